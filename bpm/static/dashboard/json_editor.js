// Checks each JSON editor (textarea[data-json-editor]) while the operator types; see
// templates/dashboard/_saga_json_editor.html. A static file, so the Content-Security-Policy needs
// no inline script.
(function () {
  "use strict";
  var schemaNode = document.getElementById("saga-input-schema");
  var schema = schemaNode ? JSON.parse(schemaNode.textContent) : null;

  function typeOf(value) {
    if (value === null) return "null";
    if (Array.isArray(value)) return "array";
    if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
    return typeof value;
  }

  function fits(value, type) {
    var actual = typeOf(value);
    return actual === type || (type === "number" && actual === "integer");
  }

  function problem(value, rule, path) {
    if (!rule || typeof rule !== "object") return "";
    var types = rule.type === undefined ? [] : [].concat(rule.type);
    if (types.length && !types.some(function (type) { return fits(value, type); })) {
      return path + ": must be " + types.join(" or ");
    }
    if (rule.enum && !rule.enum.some(function (e) { return JSON.stringify(e) === JSON.stringify(value); })) {
      return path + ": must be one of " + JSON.stringify(rule.enum);
    }
    if (typeof value === "number" && rule.minimum !== undefined && value < rule.minimum) {
      return path + ": must be at least " + rule.minimum;
    }
    if (Array.isArray(value)) {
      if (rule.minItems !== undefined && value.length < rule.minItems) {
        return path + ": needs at least " + rule.minItems + " item(s)";
      }
      for (var i = 0; i < value.length; i++) {
        var inItem = problem(value[i], rule.items, path + "[" + i + "]");
        if (inItem) return inItem;
      }
    }
    if (typeOf(value) === "object") {
      var properties = rule.properties || {};
      var required = rule.required || [];
      for (var r = 0; r < required.length; r++) {
        if (!(required[r] in value)) return path + ": '" + required[r] + "' is required";
      }
      for (var key in value) {
        if (Object.prototype.hasOwnProperty.call(properties, key)) {
          var inProperty = problem(value[key], properties[key], path + "." + key);
          if (inProperty) return inProperty;
        } else if (rule.additionalProperties === false) {
          return path + ": '" + key + "' is not allowed";
        }
      }
    }
    return "";
  }

  document.querySelectorAll("textarea[data-json-editor]:not([data-json-checked])").forEach(function (area) {
    area.setAttribute("data-json-checked", "");
    var note = document.getElementById(area.id + "-check");
    function check() {
      var message = "";
      var value;
      try { value = JSON.parse(area.value); } catch (error) { message = "Not valid JSON: " + error.message; }
      if (!message && typeOf(value) !== "object") message = "Must be a JSON object.";
      var checksSchema = area.name === "input" && schema !== null;
      if (!message && checksSchema) message = problem(value, schema, "input");
      area.setCustomValidity(message);
      if (note) {
        note.textContent = message || (checksSchema ? "Valid JSON that fits the input schema (patterns and formats are checked on saving)." : "Valid JSON.");
        note.className = "saga-json-check " + (message ? "invalid" : "valid");
      }
    }
    area.addEventListener("input", check);
    check();
  });
})();
