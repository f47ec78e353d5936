/* Progressive enhancement of the upload form.
 *
 * Without JavaScript the form posts all chosen files in one request and the
 * server answers with a page. With it, files can also be dropped onto the
 * form, each file gets its own <progress> bar and its own answer (the server
 * replies in JSON when asked), and the files still travel in one request:
 * one upload is one consent save and one receipt listing every file.
 */
(function () {
  "use strict";

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

    // Each file's share of the request body, in order, for its own progress bar.
    function showProgress(batch, loaded) {
      var offset = 0;
      batch.forEach(function (entry) {
        var size = entry.file.size || 1;
        var done = Math.max(0, Math.min(size, loaded - offset));
        var progress = entry.item.querySelector("progress");
        progress.value = Math.round((done / size) * 100);
        setMessage(entry.item, done >= size ? "Checking the file…" : "Uploading… " + progress.value + "%");
        offset += size;
      });
    }

    function failAll(batch, text) {
      batch.forEach(function (entry) {
        setMessage(entry.item, text);
        finish(entry, false);
      });
    }

    function send(batch) {
      var data = new FormData();
      data.append("csrfmiddlewaretoken", csrf ? csrf.value : "");
      batch.forEach(function (entry) {
        data.append(input.name, entry.file, entry.file.name);
      });
      // Consent (issue 4): the opt-in boxes travel with the upload.
      form.querySelectorAll('input[name="consent"]:checked').forEach(function (box) {
        data.append(box.name, box.value);
      });
      var request = new XMLHttpRequest();
      request.open("POST", form.action || window.location.href);
      request.setRequestHeader("Accept", "application/json");
      request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      request.upload.onprogress = function (event) {
        if (event.lengthComputable) {
          // The multipart framing is a little more than the files; scale to it.
          var files = batch.reduce(function (sum, entry) { return sum + (entry.file.size || 1); }, 0);
          showProgress(batch, (event.loaded / event.total) * files);
        }
      };
      request.upload.onload = function () {
        showProgress(batch, Infinity);
      };
      request.onload = function () {
        var body = null;
        try {
          body = JSON.parse(request.responseText);
        } catch (ignored) {
          body = null;
        }
        if (body && body.results && body.results.length === batch.length) {
          batch.forEach(function (entry, index) {
            showResult(entry, body.results[index]);
          });
        } else if (body && body.errors) {
          failAll(batch, "Not uploaded: " + body.errors.join(" "));
        } else {
          failAll(batch, "Not uploaded: the server answered with an error (" + request.status + ").");
        }
      };
      request.onerror = function () {
        failAll(batch, "Not uploaded: the connection failed. Check your network and try again.");
      };
      batch.forEach(function (entry) {
        entry.started = true;
        setMessage(entry.item, "Uploading…");
      });
      request.send(data);
    }

    function uploadAll() {
      var pending = queue.filter(function (entry) {
        return !entry.started;
      });
      if (pending.length) {
        send(pending);
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
