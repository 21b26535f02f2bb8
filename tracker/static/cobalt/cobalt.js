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
