// Progressive enhancement for the label pages: the forms and the progress
// page work without this file (the progress page refreshes itself).
(function () {
  "use strict";

  var bulk = document.querySelector("[data-labels-bulk]");
  if (bulk) {
    var pageBox = bulk.querySelector("[data-select-page]");
    var allBox = bulk.querySelector("[data-all-matching]");
    var rows = bulk.querySelectorAll("[data-row]");
    if (pageBox) {
      pageBox.addEventListener("change", function () {
        rows.forEach(function (row) { row.checked = pageBox.checked; });
      });
    }
    if (allBox) {
      // "All matching" covers every row, so the row boxes say so too.
      allBox.addEventListener("change", function () {
        rows.forEach(function (row) { row.checked = allBox.checked; row.disabled = allBox.checked; });
        if (pageBox) { pageBox.checked = allBox.checked; pageBox.disabled = allBox.checked; }
      });
    }
  }

  var progress = document.querySelector("[data-progress]");
  if (progress) {
    var bar = progress.querySelector("progress");
    var text = progress.querySelector("[data-progress-text]");
    var poll = function () {
      fetch(progress.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { window.setTimeout(poll, 3000); return; }
          bar.max = data.total || 1;
          bar.value = data.done;
          // The words come translated from the page when it gives them.
          var words = progress.getAttribute("data-progress-words") || "{done} of {total}";
          text.textContent = words.replace("{done}", data.done).replace("{total}", data.total);
          if (data.finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    };
    window.setTimeout(poll, 1000);
  }
})();
