// Upload form: drag-and-drop, a size check before sending, and a progress bar.
// Without JavaScript the form still posts normally and the server redirects.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = form.querySelector("input[type=file]");
  var zone = form.querySelector(".dropzone");
  var chosen = document.getElementById("chosen-file");
  var errorBox = document.getElementById("upload-error");
  var progress = document.getElementById("upload-progress");
  var button = form.querySelector("button[type=submit]");
  var maxBytes = parseInt(form.dataset.maxBytes, 10);

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function check(file) {
    if (!file) return false;
    if (file.size > maxBytes) { showError(form.dataset.tooBig); return false; }
    if (file.type && file.type.indexOf("image/") !== 0) { showError(form.dataset.notImage); return false; }
    showError("");
    chosen.textContent = file.name;
    return true;
  }

  input.addEventListener("change", function () { check(input.files[0]); });

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      check(input.files[0]);
    }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!check(input.files[0])) return;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (ignored) { /* not JSON */ }
      if (xhr.status === 202 && body.result_url) {
        window.location.assign(body.result_url);
        return;
      }
      showError(body.error || form.dataset.failed);
      progress.hidden = true;
      button.disabled = false;
    });
    xhr.addEventListener("error", function () {
      showError(form.dataset.failed);
      progress.hidden = true;
      button.disabled = false;
    });
    progress.value = 0;
    progress.hidden = false;
    button.disabled = true;
    xhr.send(new FormData(form));
  });
})();
