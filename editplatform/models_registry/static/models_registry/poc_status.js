// Proof-of-concept run page: reload once the run has finished so the summary and the
// report links render server-side. The polling itself is portal/poll_progress.js.
(function () {
  "use strict";
  var box = document.getElementById("poc-status");
  if (!box || box.dataset.finished === "true") { return; }
  window.StyleLedger.pollProgress("poc", function (run) { return run.finished; });
})();
