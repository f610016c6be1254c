// Model version page: while a version trains, poll its status every 2 s and show the phase, the
// epoch and the history of loss/accuracy; reload when training ends (metrics, plots or the error).
(function () {
  "use strict";
  var box = document.getElementById("training-progress");
  if (!box || box.dataset.status !== "training" || !box.dataset.statusUrl) return;
  var INTERVAL = 2000;
  var phaseNames = {};
  try { phaseNames = JSON.parse(document.getElementById("phase-names").textContent); } catch (e) { /* raw names */ }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  function number(value, digits) {
    return typeof value === "number" ? value.toFixed(digits) : "–";
  }

  function percent(value) {
    return typeof value === "number" ? (value * 100).toFixed(1) + "%" : "–";
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.className = "num";
    td.textContent = text;
    row.appendChild(td);
  }

  function showHistory(history) {
    var body = document.getElementById("progress-history");
    if (!body) return;
    var rows = document.createDocumentFragment();
    history.forEach(function (h) {
      var tr = document.createElement("tr");
      var phase = document.createElement("td");
      phase.textContent = phaseNames[h.phase] || h.phase || "–";
      tr.appendChild(phase);
      cell(tr, h.epoch == null ? "–" : String(h.epoch));
      cell(tr, number(h.loss, 4));
      cell(tr, percent(h.accuracy));
      cell(tr, number(h.val_loss, 4));
      cell(tr, percent(h.val_accuracy));
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
  }

  function show(version) {
    var p = version.progress || {};
    var phase = p.phase || "queued";
    setText("progress-phase", phaseNames[phase] || phase);
    setText("progress-epoch", p.epochs ? box.dataset.epochLabel + " " + (p.epoch || 0) + " / " + p.epochs : "");
    setText("progress-message", p.message || "");
    showHistory(Array.isArray(p.history) ? p.history : []);
  }

  function poll() {
    fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .catch(function () { return null; })
      .then(function (version) {
        if (version && version.status !== "training") {
          window.location.reload();
          return;
        }
        if (version) show(version);
        window.setTimeout(poll, INTERVAL);
      });
  }
  window.setTimeout(poll, INTERVAL);
})();
