// Proof-of-concept run page: poll the run's status and move the progress bar; reload
// once the run has finished so the summary and the report links render server-side.
(function () {
  "use strict";
  var box = document.getElementById("poc-status");
  if (!box || box.dataset.finished === "true") { return; }
  var url = box.dataset.statusUrl;
  var bar = document.getElementById("poc-progress");
  var text = document.getElementById("poc-progress-text");
  var badge = document.getElementById("poc-state");
  var stage = document.getElementById("poc-stage");
  var delay = 500;

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (run) {
        bar.value = run.progress;
        text.textContent = run.progress;
        stage.textContent = run.stage || "";
        badge.textContent = run.state;
        badge.className = "badge " + run.state;
        if (run.finished) { window.location.reload(); return; }
        delay = Math.min(delay * 1.2, 3000);
        window.setTimeout(poll, delay);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, delay);
})();
