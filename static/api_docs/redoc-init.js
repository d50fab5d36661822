"use strict";
// Redoc from the project's static files; the schema URL comes from the container's data attribute.
(function () {
  const container = document.getElementById("redoc-container");
  Redoc.init(container.dataset.schemaUrl, { hideDownloadButton: false, expandResponses: "200,201,202" }, container);
})();
