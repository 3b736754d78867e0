// The submission form: example circuits, fields of the chosen primitive, sessions on the chosen backend.
(function () {
  "use strict";

  function examples() {
    var el = document.getElementById("qasm-examples");
    return el ? JSON.parse(el.textContent) : {};
  }

  function sync(form) {
    if (!form) return;
    var primitive = form.elements.primitive.value;
    form.querySelectorAll("[data-primitive]").forEach(function (el) {
      el.hidden = el.dataset.primitive !== primitive;
    });
    // Only the sessions on the chosen backend can take the job.
    var backend = form.elements.backend.value, session = form.elements.session;
    Array.prototype.forEach.call(session.options, function (option) {
      var elsewhere = Boolean(option.dataset.backend) && option.dataset.backend !== backend;
      option.hidden = elsewhere;
      option.disabled = elsewhere;
    });
    if (session.selectedOptions.length && session.selectedOptions[0].disabled) session.value = "";
  }

  function form() { return document.getElementById("submit-form"); }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-example]");
    if (!button || !form()) return;
    var area = form().elements.circuit;
    area.value = examples()[button.dataset.example] || "";
    area.focus();
  });
  document.addEventListener("change", function (evt) {
    if (evt.target.form && evt.target.form === form()) sync(form());
  });
  document.addEventListener("DOMContentLoaded", function () { sync(form()); });
  document.addEventListener("htmx:afterSwap", function () { sync(form()); });
})();
