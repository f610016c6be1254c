// Album page: poll the album's JSON with back-off (like result.js) while its photos are recognised; fill the
// progress bar ("31 of 48 recognised") and each photo's answer as it comes; reload once every photo is done,
// so the page draws the trip map and its summary. Text only (textContent), never HTML from the answer.
(function () {
  "use strict";
  var box = document.getElementById("album");
  if (!box || !box.dataset.statusUrl) return;
  var text = box.dataset;
  var bar = document.getElementById("album-progress");
  var line = document.getElementById("album-progress-text");
  var lang = document.documentElement.lang === "vi" ? "vi" : "en";
  var delay = 300;          // first check after 0.3 s ...
  var MAX_DELAY = 4000;     // ... growing to one check every 4 s

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (all, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : all;
    });
  }

  function nameOf(item) { // a landmark or a suggestion
    return (lang === "vi" ? item.name_vi : item.name_en) || item.name_en || item.key || "";
  }

  function answerNodes(rec) {
    var tier = document.createElement("span");
    tier.className = "tier";
    if (rec.status === "failed") return [document.createTextNode(text.failed)];
    if (rec.status === "queued") return [document.createTextNode(text.queued)];
    if (rec.status !== "done") return [document.createTextNode(text.running)];
    if (rec.tier === "sure" && rec.landmark) {
      tier.textContent = text.sure;
      var name = document.createElement("strong");
      name.className = "answer-name";
      name.textContent = nameOf(rec.landmark);
      return [tier, document.createTextNode(" "), name];
    }
    if (rec.tier === "maybe" && rec.suggestions && rec.suggestions.length) {
      tier.textContent = fill(text.maybe, { name: nameOf(rec.suggestions[0]) });
      return [tier];
    }
    tier.textContent = text.unknown;
    return [tier];
  }

  function show(rec) {
    var cell = box.querySelector('.album-photo[data-id="' + rec.id + '"]');
    if (!cell) return false; // a photo added since the page was drawn
    if (cell.getAttribute("data-status") === rec.status) return true;
    cell.setAttribute("data-status", rec.status);
    var answer = cell.querySelector(".answer");
    answer.className = "answer tier-" + (rec.tier || rec.status);
    answer.textContent = "";
    answerNodes(rec).forEach(function (node) { answer.appendChild(node); });
    return true;
  }

  function poll() {
    fetch(text.statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .catch(function () { return null; })
      .then(function (album) {
        if (album && album.counts) {
          var counts = album.counts;
          bar.max = counts.total || 1;
          bar.value = counts.finished;
          line.textContent = fill(text.progress, { done: counts.finished, total: counts.total });
          var complete = true;
          (album.recognitions || []).forEach(function (rec) { complete = show(rec) && complete; });
          if (album.finished || !complete) {
            window.location.reload(); // the map and summary (or a photo added elsewhere) are drawn by the page
            return;
          }
        }
        delay = Math.min(MAX_DELAY, Math.round(delay * 1.5));
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, delay);
})();
