// Job page: poll the job's API resource and move the progress bar; reload the page
// once the job is finished so the results render server-side.
(function () {
  "use strict";
  var box = document.getElementById("job-status");
  if (!box || box.dataset.terminal === "true") { return; }
  var url = box.dataset.statusUrl;
  var bar = document.getElementById("job-progress");
  var text = document.getElementById("job-progress-text");
  var badge = document.getElementById("job-state");
  var stage = document.getElementById("job-stage");
  var terminal = ["succeeded", "failed", "cancelled", "rejected", "expired"];
  var initial = box.dataset.state;
  var delay = 500;

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (job) {
        bar.value = job.progress;
        text.textContent = job.progress;
        stage.textContent = job.stage || "";
        badge.textContent = job.state.replace("_", " ");
        badge.className = "badge " + job.state;
        if (terminal.indexOf(job.state) >= 0) { window.location.reload(); return; }
        // Computed and held for approval: render the "waiting for an approver" page once.
        if (job.state === "awaiting_approval" && initial !== "awaiting_approval") { window.location.reload(); return; }
        delay = Math.min(delay * 1.2, 3000);
        window.setTimeout(poll, delay);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, delay);
})();
