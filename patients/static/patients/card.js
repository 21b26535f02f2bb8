// The injection card's Print button (no inline script: a strict CSP holds).
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
