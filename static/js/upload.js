/* Progressive enhancement of the upload form.
 *
 * Without JavaScript the form posts all chosen files in one request and the
 * server answers with a page. With it, files can also be dropped onto the
 * form, and each one is sent in its own request so that it gets its own
 * <progress> bar and its own answer (the server replies in JSON when asked).
 */
(function () {
  "use strict";

  var PARALLEL_UPLOADS = 2;

  function init(form) {
    var input = form.querySelector("input[type=file]");
    var dropzone = form.querySelector("[data-dropzone]");
    var hint = form.querySelector("[data-dropzone-hint]");
    var list = form.querySelector("[data-upload-list]");
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
    var queue = [];

    if (!input || !list || !window.FormData || !("upload" in new XMLHttpRequest())) {
      return; // the plain form still works
    }
    if (hint) {
      hint.hidden = false;
    }

    function addFiles(files) {
      for (var i = 0; i < files.length; i += 1) {
        queue.push({ file: files[i], item: renderItem(files[i]) });
      }
      list.hidden = queue.length === 0;
    }

    function renderItem(file) {
      var item = document.createElement("li");
      item.className = "upload-item";
      var name = document.createElement("span");
      name.className = "upload-item__name";
      name.textContent = file.name; // textContent: a file name is never markup
      var progress = document.createElement("progress");
      progress.max = 100;
      progress.value = 0;
      progress.setAttribute("aria-label", "Upload progress for " + file.name);
      var message = document.createElement("span");
      message.className = "upload-item__message";
      message.textContent = "Waiting to upload";
      item.appendChild(name);
      item.appendChild(progress);
      item.appendChild(message);
      list.appendChild(item);
      return item;
    }

    function setMessage(item, text, link) {
      var message = item.querySelector(".upload-item__message");
      message.textContent = text;
      if (link) {
        message.appendChild(document.createTextNode(" "));
        var anchor = document.createElement("a");
        anchor.href = link.href;
        anchor.textContent = link.text;
        message.appendChild(anchor);
      }
    }

    function finish(entry, ok) {
      entry.item.classList.add(ok ? "upload-item--ok" : "upload-item--bad");
      entry.done = true;
    }

    function showResult(entry, result) {
      var item = entry.item;
      if (!result.ok) {
        setMessage(
          item,
          "Not uploaded: " + result.message,
          result.existing_url ? { href: result.existing_url, text: "See “" + result.existing_title + "”" } : null
        );
        item.querySelector(".upload-item__message").setAttribute("role", "alert");
        finish(entry, false);
        return;
      }
      // From here on the status line follows the track's processing.
      var status = document.createElement("span");
      status.className = "upload-item__status";
      status.setAttribute("data-track-status-url", result.status_url);
      var badge = document.createElement("span");
      badge.setAttribute("data-track-status-label", "");
      var text = document.createElement("span");
      text.setAttribute("data-track-status-message", "");
      status.appendChild(badge);
      status.appendChild(document.createTextNode(" "));
      status.appendChild(text);
      setMessage(item, "", { href: result.url, text: "Open “" + result.title + "”" });
      item.insertBefore(status, item.querySelector(".upload-item__message"));
      var current = {
        status: result.status,
        status_label: result.status.charAt(0).toUpperCase() + result.status.slice(1),
        message: result.message,
      };
      window.TrackStatus.render(status, current);
      if (result.status === "processing") {
        window.TrackStatus.watch(status, function (data) {
          finish(entry, data.status === "ready");
        });
      } else {
        finish(entry, result.status === "ready");
      }
    }

    function send(entry, next) {
      var data = new FormData();
      data.append("csrfmiddlewaretoken", csrf ? csrf.value : "");
      data.append(input.name, entry.file, entry.file.name);
      // Consent (issue 4): the opt-in boxes travel with every file.
      form.querySelectorAll('input[name="consent"]:checked').forEach(function (box) {
        data.append(box.name, box.value);
      });
      var request = new XMLHttpRequest();
      var progress = entry.item.querySelector("progress");
      request.open("POST", form.action || window.location.href);
      request.setRequestHeader("Accept", "application/json");
      request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      request.upload.onprogress = function (event) {
        if (event.lengthComputable) {
          progress.value = Math.round((event.loaded / event.total) * 100);
          setMessage(entry.item, "Uploading… " + progress.value + "%");
        }
      };
      request.upload.onload = function () {
        progress.value = 100;
        setMessage(entry.item, "Checking the file…");
      };
      request.onload = function () {
        var body = null;
        try {
          body = JSON.parse(request.responseText);
        } catch (ignored) {
          body = null;
        }
        if (body && body.results && body.results.length) {
          showResult(entry, body.results[0]);
        } else if (body && body.errors) {
          setMessage(entry.item, "Not uploaded: " + body.errors.join(" "));
          finish(entry, false);
        } else {
          setMessage(entry.item, "Not uploaded: the server answered with an error (" + request.status + ").");
          finish(entry, false);
        }
        next();
      };
      request.onerror = function () {
        setMessage(entry.item, "Not uploaded: the connection failed. Check your network and try again.");
        finish(entry, false);
        next();
      };
      setMessage(entry.item, "Uploading…");
      request.send(data);
    }

    function uploadAll() {
      var pending = queue.filter(function (entry) {
        return !entry.started;
      });
      var index = 0;
      function next() {
        if (index >= pending.length) {
          return;
        }
        var entry = pending[index];
        index += 1;
        entry.started = true;
        send(entry, next);
      }
      for (var i = 0; i < PARALLEL_UPLOADS; i += 1) {
        next();
      }
    }

    input.addEventListener("change", function () {
      // Choosing again replaces files not yet sent.
      queue = queue.filter(function (entry) {
        if (!entry.started) {
          list.removeChild(entry.item);
          return false;
        }
        return true;
      });
      addFiles(input.files);
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!queue.some(function (entry) { return !entry.started; })) {
        input.focus();
        return;
      }
      uploadAll();
      input.value = "";
    });

    if (dropzone) {
      ["dragenter", "dragover"].forEach(function (type) {
        dropzone.addEventListener(type, function (event) {
          event.preventDefault();
          dropzone.classList.add("dropzone--active");
        });
      });
      ["dragleave", "drop"].forEach(function (type) {
        dropzone.addEventListener(type, function (event) {
          event.preventDefault();
          dropzone.classList.remove("dropzone--active");
        });
      });
      dropzone.addEventListener("drop", function (event) {
        if (event.dataTransfer && event.dataTransfer.files.length) {
          addFiles(event.dataTransfer.files);
        }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("[data-upload-form]");
    for (var i = 0; i < forms.length; i += 1) {
      init(forms[i]);
    }
  });
})();
