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

  // ---- Error answers to htmx requests stay in the page, with DEBUG on or off ------------------
  // With DEBUG on, django-htmx's script (listening on the document) replaces the whole page with
  // any 400, 403, 404 or 500 answer. The <html> element hears the event first: a client error
  // stops there, so it is either swapped where the page asked (the action panel's 400, 403 and
  // 409, see _saga_htmx_config.html) or said in the page's alert line below. A 5xx with DEBUG
  // on still reaches django-htmx: the developer gets the traceback page.
  document.documentElement.addEventListener("htmx:beforeOnLoad", function (event) {
    var status = event.detail.xhr.status;
    if (status >= 400 && status < 500) event.stopPropagation();
  });

  // An error the page did not ask to swap, or a whole error page (a 403 page, say, where the
  // panel expected its own fragment), is said in the alert line instead.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (!detail.isError) return;
    if (detail.shouldSwap && /^\s*<!DOCTYPE|<html[\s>]/i.test(detail.serverResponse || "")) {
      detail.shouldSwap = false;
    }
    if (!detail.shouldSwap) alertLine(errorMessage(detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    alertLine("The server did not answer: check the connection, then reload the page.");
  });

  // The sentence an error page marks with data-error-message (templates/403.html and the
  // others), else its first error note, else the status line.
  function errorMessage(xhr) {
    var text = "";
    var contentType = xhr.getResponseHeader("Content-Type") || "";
    if (contentType.indexOf("html") !== -1 && xhr.responseText) {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var node = doc.querySelector("[data-error-message]") || doc.querySelector(".errornote");
      if (node) text = node.textContent.replace(/\s+/g, " ").trim();
    }
    var status = xhr.status + (xhr.statusText ? " " + xhr.statusText : "");
    return text ? status + ": " + text : "The server answered " + status + ".";
  }

  function alertLine(message) {
    var line = document.getElementById("dashboard-alert");
    if (!line) {
      line = document.createElement("p");
      line.id = "dashboard-alert";
      line.className = "errornote dashboard-alert";
      line.setAttribute("role", "alert");
      var anchor = document.querySelector(".dashboard-tabs") || document.getElementById("content");
      if (!anchor) return;
      anchor.insertAdjacentElement("afterend", line);
    }
    line.textContent = message;
  }

  // ---- Live regions that refresh without losing focus or selection -----------------------------
  // An element with data-morph is polled by htmx like any other, but the fresh copy is merged
  // into it node by node instead of replacing it: unchanged text nodes stay (so a selection in
  // them does), the focused element stays, and rows are matched by their data-key.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.hasAttribute || !target.hasAttribute("data-morph")) return;
    if (event.detail.isError || !event.detail.shouldSwap) return;
    var template = document.createElement("template");
    template.innerHTML = event.detail.serverResponse;
    var fresh = template.content.getElementById(target.id);
    if (!fresh) return;
    event.detail.shouldSwap = false;
    var before = stuckState(target);
    morph(target, fresh);
    announce(before, stuckState(target));
    if (window.htmx) window.htmx.process(target);
  });

  function keyOf(node) {
    if (node.nodeType !== 1) return "";
    return node.getAttribute("data-key") || node.id || "";
  }

  function morph(from, to) {
    if (from.nodeType === 3 || from.nodeType === 8) {
      if (from.data !== to.data) from.data = to.data;
      return;
    }
    syncAttributes(from, to);
    // A field the operator is typing in keeps what they typed.
    if (from === document.activeElement && "value" in from) return;
    morphChildren(from, to);
  }

  function syncAttributes(from, to) {
    var i;
    for (i = from.attributes.length - 1; i >= 0; i--) {
      var name = from.attributes[i].name;
      if (!to.hasAttribute(name)) from.removeAttribute(name);
    }
    for (i = 0; i < to.attributes.length; i++) {
      var attribute = to.attributes[i];
      if (from.getAttribute(attribute.name) !== attribute.value) {
        from.setAttribute(attribute.name, attribute.value);
      }
    }
  }

  function morphChildren(from, to) {
    var keyed = {};
    Array.prototype.forEach.call(from.childNodes, function (child) {
      var key = keyOf(child);
      if (key) keyed[key] = child;
    });
    var cursor = from.firstChild;
    Array.prototype.slice.call(to.childNodes).forEach(function (next) {
      var key = keyOf(next);
      var match = null;
      if (key) {
        match = keyed[key] && keyed[key].nodeName === next.nodeName ? keyed[key] : null;
      } else if (cursor && !keyOf(cursor) && cursor.nodeName === next.nodeName) {
        match = cursor;
      }
      if (match) {
        if (match === cursor) cursor = cursor.nextSibling;
        else from.insertBefore(match, cursor);
        morph(match, next);
      } else {
        from.insertBefore(document.importNode(next, true), cursor);
      }
    });
    while (cursor) {
      var after = cursor.nextSibling;
      from.removeChild(cursor);
      cursor = after;
    }
  }

  // The overview's stuck list: rows carry data-stuck-saga, its section data-stuck-total.
  function stuckState(region) {
    var ids = {};
    region.querySelectorAll("[data-stuck-saga]").forEach(function (row) {
      ids[row.getAttribute("data-stuck-saga")] = true;
    });
    var total = region.querySelector("[data-stuck-total]");
    return { ids: ids, total: total ? Number(total.getAttribute("data-stuck-total")) : 0 };
  }

  function announce(before, after) {
    var line = document.getElementById("overview-news");
    if (!line) return;
    var arrived = Object.keys(after.ids).filter(function (id) { return !before.ids[id]; });
    var count = Math.max(arrived.length, after.total - before.total);
    if (count <= 0) return;
    var time = new Date().toLocaleTimeString();
    line.textContent = count + " new stuck saga" + (count === 1 ? "" : "s") + " (" + time + ").";
  }

  // ---- An action's notice follows the saga ---------------------------------------------------
  // "… The saga is now RUNNING." must not stay after the saga completed: when the live region
  // is refreshed with another status, the notice says the new one.
  var NOW = /The saga is now [A-Z_]+\./;
  document.addEventListener("htmx:afterSettle", function () {
    var live = document.getElementById("saga-live");
    if (!live) return;
    var status = live.getAttribute("data-status");
    document.querySelectorAll("#saga-notice li, .messagelist li.saga-notice").forEach(function (item) {
      if (NOW.test(item.textContent)) {
        item.textContent = item.textContent.replace(NOW, "The saga is now " + status + ".");
      }
    });
  });
})();
