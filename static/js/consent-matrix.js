// Consent matrix: adds "tick all / untick all" per purpose column on this page.
// Progressive enhancement only: the form saves the same way without it, and
// purposes that need confirmation still go through the confirmation page.
(function () {
  "use strict";
  var form = document.querySelector("[data-consent-matrix]");
  if (!form) { return; }
  var headers = form.querySelectorAll("th.consent-matrix__purpose");
  var slugs = [];
  form.querySelectorAll("tbody tr:first-child input[data-purpose]").forEach(function (box) {
    slugs.push(box.getAttribute("data-purpose"));
  });
  headers.forEach(function (th, index) {
    var slug = slugs[index];
    if (!slug) { return; }
    var name = th.textContent.trim();
    var wrap = document.createElement("span");
    wrap.className = "consent-matrix__bulk";
    [["all", true], ["none", false]].forEach(function (pair) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link-button";
      button.textContent = pair[0];
      button.setAttribute("aria-label", (pair[1] ? "Tick " : "Untick ") + name + " for every track on this page");
      button.addEventListener("click", function () {
        form.querySelectorAll('input[data-purpose="' + slug + '"]').forEach(function (box) {
          box.checked = pair[1];
        });
      });
      wrap.appendChild(button);
    });
    th.appendChild(wrap);
  });
})();
