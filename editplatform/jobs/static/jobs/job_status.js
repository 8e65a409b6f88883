// Job page: reload once the job is finished so the results render server-side, or once
// it is computed and held for approval so the "waiting for an approver" page renders.
// The polling itself is portal/poll_progress.js.
(function () {
  "use strict";
  var box = document.getElementById("job-status");
  if (!box || box.dataset.terminal === "true") { return; }
  var terminal = ["succeeded", "failed", "cancelled", "rejected", "expired"];
  var initial = box.dataset.state;
  window.StyleLedger.pollProgress("job", function (job) {
    if (terminal.indexOf(job.state) >= 0) { return true; }
    return job.state === "awaiting_approval" && initial !== "awaiting_approval";
  });
})();
