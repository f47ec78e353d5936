/* Keeps a track's status current while it is processing.
 *
 * Any element with data-track-status-url is polled (with a growing delay)
 * until the track settles as ready or failed. With data-reload-on-settle the
 * page reloads then, to show what processing found. Without JavaScript the
 * page offers a plain "Refresh" link instead.
 */
(function () {
  "use strict";

  var FIRST_DELAY_MS = 1000;
  var MAX_DELAY_MS = 10000;
  var BADGES = { ready: "badge--ok", processing: "badge--warn", failed: "badge--bad" };

  function render(element, data) {
    var label = element.querySelector("[data-track-status-label]");
    var message = element.querySelector("[data-track-status-message]");
    if (label) {
      label.textContent = data.status_label;
      label.className = "badge " + (BADGES[data.status] || "");
    }
    if (message) {
      message.textContent = data.message;
    }
    element.setAttribute("data-status", data.status);
  }

  function watch(element, onSettle) {
    var url = element.getAttribute("data-track-status-url");
    var delay = FIRST_DELAY_MS;
    if (!url) {
      return;
    }

    function poll() {
      var request = new XMLHttpRequest();
      request.open("GET", url);
      request.setRequestHeader("Accept", "application/json");
      request.onload = function () {
        var data = null;
        if (request.status === 200) {
          try {
            data = JSON.parse(request.responseText);
          } catch (ignored) {
            data = null;
          }
        }
        if (data) {
          render(element, data);
          if (data.settled) {
            if (onSettle) {
              onSettle(data);
            } else if (element.hasAttribute("data-reload-on-settle")) {
              window.location.reload();
            }
            return;
          }
        }
        schedule();
      };
      request.onerror = schedule;
      request.send();
    }

    function schedule() {
      window.setTimeout(poll, delay);
      delay = Math.min(delay * 1.5, MAX_DELAY_MS);
    }

    schedule();
  }

  window.TrackStatus = { watch: watch, render: render };

  document.addEventListener("DOMContentLoaded", function () {
    var elements = document.querySelectorAll("[data-track-status-url]");
    for (var i = 0; i < elements.length; i += 1) {
      watch(elements[i]);
    }
  });
})();
