// Cobalt's page script: starts the NHS.UK design system's components (as its template does) and
// marks the page as one with JavaScript. No inline script is needed anywhere (a strict CSP holds).
import { initAll } from "../vendor/nhsuk/nhsuk-frontend.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();

// htmx sends the CSRF token of the page with every request it makes (Django's CSRF check).
document.body.addEventListener("htmx:configRequest", (event) => {
  const token = document.querySelector('meta[name="csrf-token"]');
  if (token) {
    event.detail.headers["X-CSRFToken"] = token.getAttribute("content");
  }
});

// A part of the page that could not be updated: no answer (network), or an answer htmx does not put in the page
// (403, 404, 5xx; the worklist's forms put their 400 and 409 in place: regimens/static/regimens/worklist.js).
// Without this the click did nothing visible. The box and its texts are in base.html (translated there).
function showUpdateError(kind) {
  const box = document.getElementById("app-update-error");
  if (!box) {
    return;
  }
  box.querySelectorAll("[data-status]").forEach((text) => {
    text.hidden = text.dataset.status !== kind;
  });
  box.hidden = false;
  box.focus();
}
document.body.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  showUpdateError(status === 403 || status === 404 ? String(status) : "other");
});
document.body.addEventListener("htmx:sendError", () => showUpdateError("network"));
document.body.addEventListener("htmx:timeout", () => showUpdateError("network"));
