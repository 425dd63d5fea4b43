// Starts Swagger UI on /openapi.json (a file of its own: the page's CSP allows no inline script).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
  });
});
