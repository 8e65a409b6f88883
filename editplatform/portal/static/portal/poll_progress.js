// Shared progress poller for pages that show a long-running task (a job, a PoC run):
// poll the task's JSON resource with a growing delay, move the progress bar, and
// reload the page when `shouldReload(item)` says so, so the finished state renders
// server-side. Each page supplies only its element prefix and when to reload.
(function () {
  "use strict";
  window.StyleLedger = window.StyleLedger || {};
  window.StyleLedger.pollProgress = function (prefix, shouldReload) {
    var box = document.getElementById(prefix + "-status");
    if (!box) { return null; }
    var url = box.dataset.statusUrl;
    var bar = document.getElementById(prefix + "-progress");
    var text = document.getElementById(prefix + "-progress-text");
    var badge = document.getElementById(prefix + "-state");
    var stage = document.getElementById(prefix + "-stage");
    var delay = 500;

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (item) {
          bar.value = item.progress;
          text.textContent = item.progress;
          stage.textContent = item.stage || "";
          badge.textContent = item.state.replace("_", " ");
          badge.className = "badge " + item.state;
          if (shouldReload(item, box)) { window.location.reload(); return; }
          delay = Math.min(delay * 1.2, 3000);
          window.setTimeout(poll, delay);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, delay);
    return box;
  };
})();
