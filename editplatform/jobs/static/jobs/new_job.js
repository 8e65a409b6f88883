// New edit form: preview of the chosen photo and live slider values. No inline
// scripts anywhere (a Content-Security-Policy will forbid them).
(function () {
  "use strict";
  var form = document.getElementById("new-job-form");
  if (!form) { return; }
  var input = form.querySelector("input[type=file]");
  var preview = document.getElementById("image-preview");
  var caption = document.getElementById("preview-caption");
  var lastUrl = null;
  if (input && preview) {
    input.addEventListener("change", function () {
      if (lastUrl) { URL.revokeObjectURL(lastUrl); lastUrl = null; }
      var file = input.files && input.files[0];
      if (!file) { preview.hidden = true; caption.textContent = "No photo chosen yet."; return; }
      lastUrl = URL.createObjectURL(file);
      preview.src = lastUrl;
      preview.hidden = false;
      caption.textContent = file.name + " (" + Math.round(file.size / 1024) + " KB)";
    });
  }
  form.querySelectorAll("input.edit-slider").forEach(function (slider) {
    var output = form.querySelector('output[data-for="' + slider.id + '"]');
    var show = function () { if (output) { output.textContent = Number(slider.value).toFixed(2); } };
    slider.addEventListener("input", show);
    show();
  });
})();
