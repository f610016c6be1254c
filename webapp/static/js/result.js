// Result page: poll the recognition's JSON status with back-off, reload when it is finished.
(function () {
  "use strict";
  var box = document.getElementById("result");
  if (!box || !box.dataset.statusUrl) return;
  var delay = 300;           // first check after 0.3 s ...
  var MAX_DELAY = 4000;      // ... growing to one check every 4 s
  var shown = box.dataset.status;

  function poll() {
    fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .catch(function () { return null; })
      .then(function (body) {
        if (body && (body.status === "done" || body.status === "failed" || body.status !== shown)) {
          window.location.reload();
          return;
        }
        delay = Math.min(MAX_DELAY, Math.round(delay * 1.5));
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, delay);
})();
