// The saga page's attempt drawer: a timeline bar or a diagram step (anything with data-index
// inside the live region) opens its attempt when clicked, or focused and Enter or Space pressed.
// The address carries #attempt-<n>, so a link opens the drawer on load. No inline script (CSP).
(function () {
  "use strict";
  var PATTERN = /^#attempt-(\d+)$/;
  var opener = null;

  function drawer() { return document.getElementById("attempt-drawer"); }

  function open(number, from) {
    var dialog = drawer();
    if (!dialog) return;
    opener = from || null;
    var body = document.getElementById("attempt-drawer-body");
    body.textContent = "Loading attempt " + number + "…";
    if (!dialog.open) dialog.showModal();
    if (location.hash !== "#attempt-" + number) {
      history.replaceState(null, "", "#attempt-" + number);
    }
    fetch(dialog.getAttribute("data-url") + number + "/", {
      headers: { "HX-Request": "true" },
      credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) throw new Error("attempt " + number + ": HTTP " + response.status);
      return response.text();
    }).then(function (html) {
      var parsed = new DOMParser().parseFromString(html, "text/html");
      body.replaceChildren.apply(body, Array.prototype.slice.call(parsed.body.childNodes));
      var title = body.querySelector(".attempt-detail-title");
      document.getElementById("attempt-drawer-title").textContent =
        title ? title.textContent : "Attempt " + number;
    }).catch(function (error) {
      body.textContent = "Could not load the attempt: " + error.message;
    });
  }

  function target(event) {
    var node = event.target.closest ? event.target.closest("[data-index]") : null;
    if (!node || !node.closest(".saga-timeline, .saga-diagram")) return null;
    return node;
  }

  document.addEventListener("click", function (event) {
    var closer = event.target.closest ? event.target.closest("[data-closes]") : null;
    if (closer) {
      var dialog = document.getElementById(closer.getAttribute("data-closes"));
      if (dialog && dialog.open) dialog.close();
      return;
    }
    var node = target(event);
    if (node) open(node.getAttribute("data-index"), node);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    var node = target(event);
    if (!node) return;
    event.preventDefault();
    open(node.getAttribute("data-index"), node);
  });

  document.addEventListener("close", function (event) {
    if (event.target !== drawer()) return;
    if (PATTERN.test(location.hash)) history.replaceState(null, "", location.pathname + location.search);
    // The live region may have been redrawn meanwhile: focus the same bar by its number.
    var again = opener && opener.id ? document.getElementById(opener.id) : opener;
    if (again && again.focus) again.focus();
  }, true);

  function fromHash() {
    var match = PATTERN.exec(location.hash);
    if (match) open(match[1], document.getElementById("attempt-bar-" + match[1]));
  }
  window.addEventListener("hashchange", fromHash);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fromHash);
  } else {
    fromHash();
  }
})();
