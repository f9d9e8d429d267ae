// Starts ReDoc on the schema named by this script's data-schema-url, passing the page's CSP nonce
// so that the styles ReDoc injects are allowed. A static file: the CSP allows no inline script.
(function () {
  "use strict";
  var script = document.currentScript;
  Redoc.init(
    script.dataset.schemaUrl,
    { nonce: script.nonce },
    document.getElementById("redoc-container")
  );
})();
