// The gateway's API document (/openapi.json) in Swagger UI, vendored with the panel's
// libraries; no request leaves this origin (the online validator is off).
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
  });
});
