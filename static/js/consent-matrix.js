// Consent matrix: "all / none" per use column on this page, and a warning before leaving with unsaved ticks.
// Progressive enhancement only: the form saves the same way without it, and
// uses that need confirmation still go through the confirmation page.
(function () {
  "use strict";
  // Ticking a track for the bulk change means "only the ticked tracks".
  var ticked = document.querySelector("[data-bulk-scope-ticked]");
  var all = document.querySelector("[data-bulk-scope-all]");
  document.querySelectorAll("[data-bulk-pick]").forEach(function (box) {
    box.addEventListener("change", function () {
      var any = document.querySelector("[data-bulk-pick]:checked");
      if (ticked && all) { (any ? ticked : all).checked = true; }
    });
  });

  var form = document.querySelector("[data-consent-matrix]");
  if (!form) { return; }
  // The words come from the template, translated there.
  var words = {
    all: form.getAttribute("data-word-all"),
    none: form.getAttribute("data-word-none"),
    tick: form.getAttribute("data-word-tick"),
    untick: form.getAttribute("data-word-untick")
  };

  form.querySelectorAll("th[data-purpose-header]").forEach(function (th) {
    var slug = th.getAttribute("data-purpose-header");
    var name = th.textContent.trim();
    var wrap = document.createElement("span");
    wrap.className = "consent-matrix__bulk";
    [[words.all, words.tick, true], [words.none, words.untick, false]].forEach(function (spec) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link-button";
      // The visible word starts the accessible name (WCAG 2.5.3); the rest says what it does.
      button.appendChild(document.createTextNode(spec[0]));
      var more = document.createElement("span");
      more.className = "visually-hidden";
      more.textContent = " (" + spec[1] + name + ")";
      button.appendChild(more);
      button.addEventListener("click", function () {
        form.querySelectorAll('input[data-purpose="' + slug + '"]').forEach(function (box) {
          box.checked = spec[2];
        });
      });
      wrap.appendChild(button);
    });
    th.appendChild(wrap);
  });

  function unsaved() {
    var boxes = form.querySelectorAll("input[type=checkbox][name=consent]");
    for (var i = 0; i < boxes.length; i += 1) {
      if (boxes[i].checked !== boxes[i].defaultChecked) { return true; }
    }
    return false;
  }
  var submitting = false;
  form.addEventListener("submit", function () { submitting = true; });
  window.addEventListener("beforeunload", function (event) {
    if (!submitting && unsaved()) {
      event.preventDefault();
      // Browsers show their own text; older ones want a return value.
      event.returnValue = form.getAttribute("data-unsaved-warning") || "";
    }
  });
})();
