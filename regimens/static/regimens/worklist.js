// The worklist's in-place forms: a form sent back with errors (400) or a conflict (409) replaces the
// dose's rows like a success does, so the nurse sees what to fix where they are typing.
document.body.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  if (status === 400 || status === 409) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
