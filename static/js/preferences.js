// Preference center: mark changed cells so the person sees what "Save" will write.
(function () {
  "use strict";
  var form = document.getElementById("matrix-form");
  if (!form) return;
  var button = document.getElementById("save-matrix");
  var changed = 0;
  form.querySelectorAll("select").forEach(function (select) {
    var initial = select.value;
    select.addEventListener("change", function () {
      var was = select.dataset.changed === "1";
      var now = select.value !== initial;
      select.dataset.changed = now ? "1" : "0";
      select.closest("td").classList.toggle("changed", now);
      changed += (now ? 1 : 0) - (was ? 1 : 0);
      button.textContent = changed ? "Save " + changed + " change" + (changed > 1 ? "s" : "") : "Save preferences";
    });
  });
})();
