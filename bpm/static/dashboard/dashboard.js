// The dashboard's few behaviours, in a static file: the Content-Security-Policy allows no inline
// script and no eval (so no hx-on attributes).
(function () {
  "use strict";
  // A button with data-empties="<id>" empties that element (the action panel's Cancel).
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-empties]") : null;
    if (!button) return;
    var target = document.getElementById(button.getAttribute("data-empties"));
    if (target) target.replaceChildren();
  });
})();
