// Django admin's two-list widget (filter_horizontal) adds icons that carry an aria-label
// without a role, which ARIA does not allow on a plain span: give them the role "img".
(function () {
  "use strict";
  function fix(root) {
    root.querySelectorAll(".help-tooltip[aria-label]:not([role])").forEach(function (icon) {
      icon.setAttribute("role", "img");
    });
  }
  fix(document);
  new MutationObserver(function () { fix(document); }).observe(document.documentElement, { childList: true, subtree: true });
})();
