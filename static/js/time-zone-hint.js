// The browser's IANA time zone as a hint for sign-up and settings. Without
// JavaScript nothing happens and the server keeps UTC, which the user can change.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (error) {
    return;
  }
  if (!zone) return;
  document.querySelectorAll("[data-time-zone-hint]").forEach(function (field) {
    if (field.tagName === "SELECT") {
      // Only a suggestion for someone still on the default; the user saves it.
      var hasOption = Array.prototype.some.call(field.options, function (option) {
        return option.value === zone;
      });
      if (field.value === "UTC" && hasOption) field.value = zone;
    } else if (!field.value) {
      field.value = zone;
    }
  });
})();
