// Upload form. One photo: sent with a progress bar, then its result page (as before albums).
// Several photos (chosen at once, dropped, or a whole folder where the browser can pick one): a trip album,
// sent one by one with a progress bar each — the first creates the album (POST /a), the others join it
// (its add_url) — then the album page. A refused file gets its own error and does not stop the others.
// Checks before sending: size, image type, at most data-max-photos. Without JavaScript the form posts
// every file at once and the server makes the album.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = document.getElementById("image");
  var folder = document.getElementById("folder");
  var folderChoice = document.getElementById("folder-choice");
  var zone = form.querySelector(".dropzone");
  var chosenText = document.getElementById("chosen-file");
  var errorBox = document.getElementById("upload-error");
  var progress = document.getElementById("upload-progress");
  var statusLine = document.getElementById("upload-status");
  var list = document.getElementById("upload-list");
  var next = document.getElementById("album-next");
  var nextLink = document.getElementById("album-link");
  var button = form.querySelector("button[type=submit]");
  var text = form.dataset;
  var maxBytes = parseInt(text.maxBytes, 10);
  var maxPhotos = parseInt(text.maxPhotos, 10);
  var IMAGE_NAME = /\.(jpe?g|png|webp|hei[cf])$/i;
  var chosen = []; // {file, problem, row, bar, state}

  if (folder && !("webkitdirectory" in folder)) folderChoice.hidden = true; // no folder picker here

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (all, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : all;
    });
  }

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function problemOf(file) { // why this file is not sent, or ""
    if (file.size > maxBytes) return text.tooBig;
    var looksLikeImage = file.type ? file.type.indexOf("image/") === 0 : IMAGE_NAME.test(file.name);
    return looksLikeImage ? "" : text.notImage;
  }

  function row(item) {
    var li = document.createElement("li");
    li.className = "upload-item";
    var name = document.createElement("span");
    name.className = "file-name";
    name.textContent = item.file.name;
    item.bar = document.createElement("progress");
    item.bar.max = 100;
    item.bar.value = 0;
    item.state = document.createElement("span");
    item.state.className = "file-state";
    li.appendChild(name);
    li.appendChild(item.bar);
    li.appendChild(item.state);
    item.row = li;
    setState(item, item.problem ? "refused" : "waiting", item.problem || text.waiting);
    return li;
  }

  function setState(item, state, message) {
    item.row.setAttribute("data-state", state);
    item.state.textContent = message;
    if (state === "refused") item.state.setAttribute("role", "alert");
  }

  function choose(files, fromFolder) {
    chosen = [];
    list.textContent = "";
    next.hidden = true;
    showError("");
    Array.prototype.forEach.call(files, function (file) {
      var problem = problemOf(file);
      if (fromFolder && problem === text.notImage) return; // a folder's other files are left out quietly
      chosen.push({ file: file, problem: problem });
    });
    var sendable = 0;
    chosen.forEach(function (item) {
      if (!item.problem && ++sendable > maxPhotos) item.problem = text.tooMany;
    });
    if (chosen.length === 1) {
      chosenText.textContent = chosen[0].file.name;
      showError(chosen[0].problem);
      list.hidden = true;
      return;
    }
    chosenText.textContent = chosen.length ? fill(text.chosen, { count: chosen.length }) : "";
    chosen.forEach(function (item) { list.appendChild(row(item)); });
    list.hidden = chosen.length === 0;
  }

  input.addEventListener("change", function () {
    if (folder) folder.value = "";
    choose(input.files, false);
  });
  if (folder) {
    folder.addEventListener("change", function () {
      input.value = "";
      choose(folder.files, true);
    });
  }

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
      if (folder) folder.value = "";
      choose(input.files, false);
    }
  });

  // POST one file; done(accepted, body) with the JSON answer ({} when there is none)
  function send(url, file, bar, done) {
    var body = new FormData();
    body.append("csrf_token", form.elements.csrf_token.value);
    body.append("images", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", function () {
      var answer = {};
      try { answer = JSON.parse(xhr.responseText) || {}; } catch (ignored) { /* not JSON */ }
      done(xhr.status === 202, answer);
    });
    xhr.addEventListener("error", function () { done(false, {}); });
    xhr.send(body);
  }

  function reason(answer) {
    if (answer.errors && answer.errors.length) return answer.errors[0].error;
    return answer.error || text.failed;
  }

  function sendOne(item) {
    progress.value = 0;
    progress.hidden = false;
    button.disabled = true;
    send(form.action, item.file, progress, function (accepted, answer) {
      if (accepted && answer.result_url) {
        window.location.assign(answer.result_url);
        return;
      }
      showError(reason(answer));
      progress.hidden = true;
      button.disabled = false;
    });
  }

  function sendAlbum(items) {
    var addUrl = null;
    var albumPage = null;
    var refused = chosen.length - items.length;
    var index = 0;
    button.disabled = true;
    statusLine.hidden = false;

    function step() {
      if (index >= items.length) {
        finish();
        return;
      }
      var item = items[index++];
      statusLine.textContent = fill(text.uploading, { done: index, total: items.length });
      setState(item, "sending", "");
      send(addUrl || text.albumUrl, item.file, item.bar, function (accepted, answer) {
        if (accepted) {
          if (!addUrl) {
            addUrl = answer.add_url;
            albumPage = answer.url;
          }
          item.bar.value = 100;
          setState(item, "added", text.sent);
        } else {
          refused++;
          setState(item, "refused", reason(answer));
        }
        step();
      });
    }

    function finish() {
      button.disabled = false;
      statusLine.hidden = true;
      chosen = []; // sent: the list stays as a record, a new choice starts again
      input.value = "";
      if (folder) folder.value = "";
      var failedText = refused === 1 ? text.oneFailed : fill(text.someFailed, { count: refused });
      if (!albumPage) { // not one photo could be added: no album
        showError(failedText);
        return;
      }
      if (!refused) {
        window.location.assign(albumPage);
        return;
      }
      showError(failedText);
      nextLink.href = albumPage;
      next.hidden = false;
    }

    step();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    next.hidden = true;
    var sendable = chosen.filter(function (item) { return !item.problem; });
    if (!sendable.length) {
      showError(chosen.length ? chosen[0].problem : text.notImage);
      return;
    }
    showError("");
    if (chosen.length === 1) sendOne(sendable[0]);
    else sendAlbum(sendable);
  });
})();
