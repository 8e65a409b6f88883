// New edit form: preview of the chosen photo; each edit's number box (the value sent)
// and its slider kept in sync, and a "Recommended" button that sets the catalog's
// recommended strength exactly. No inline scripts anywhere (the Content-Security-Policy
// forbids them).
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
  // A slider moves in continuous steps: what it hands to the number box is rounded to
  // two decimals, and the slider itself is moved to that value, so both show the same.
  var round2 = function (value) { return String(Math.round(Number(value) * 100) / 100); };
  form.querySelectorAll("input.edit-slider").forEach(function (slider) {
    var box = document.getElementById(slider.getAttribute("data-for"));
    if (!box) { return; }
    slider.addEventListener("input", function () {
      box.value = round2(slider.value);
      slider.value = box.value;
    });
    box.addEventListener("input", function () {
      var value = Number(box.value);
      if (box.value !== "" && isFinite(value)) { slider.value = String(value); }
    });
    slider.value = box.value;
  });
  form.querySelectorAll("button.recommend").forEach(function (button) {
    button.addEventListener("click", function () {
      var box = document.getElementById(button.getAttribute("data-for"));
      var slider = document.getElementById("slider_" + button.getAttribute("data-for"));
      if (!box) { return; }
      box.value = button.getAttribute("data-value");
      if (slider) { slider.value = box.value; }
      box.dispatchEvent(new Event("change", { bubbles: true }));
    });
  });
})();
