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

  // A device backend offers "transpile for the device", ticked when it is chosen; the link
  // beside the backends goes to the chosen one's page.
  function syncBackend(form, chosen) {
    if (!form) return;
    var select = form.elements.backend, option = select.selectedOptions[0];
    var device = Boolean(option && option.dataset.device);
    var field = document.getElementById("transpile-field"), box = form.elements.transpile;
    if (field) field.hidden = !device;
    if (box && chosen) box.checked = device;
    var link = document.getElementById("backend-page");
    if (link && select.value) link.setAttribute("href", link.getAttribute("href").replace(/[^/]*$/, encodeURIComponent(select.value)));
  }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-example]");
    if (!button || !form()) return;
    var area = form().elements.circuit;
    area.value = examples()[button.dataset.example] || "";
    area.focus();
  });
  document.addEventListener("change", function (evt) {
    if (evt.target.form && evt.target.form === form()) sync(form());
    if (evt.target.name === "backend" && evt.target.form === form()) syncBackend(form(), true);
  });
  document.addEventListener("DOMContentLoaded", function () { sync(form()); syncBackend(form(), true); });
  document.addEventListener("htmx:afterSwap", function () { sync(form()); syncBackend(form(), false); });
})();
