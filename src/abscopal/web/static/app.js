// Abscopal's only script besides htmx: no inline scripts (the CSP forbids them).
// Sends the session's CSRF token with every htmx request and shows htmx errors in the page.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content"); }
});
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status === 409 || status === 422 || status === 403 || status === 404) {
    event.detail.shouldSwap = true;   // the server sends a sentence fragment for these: show it
    event.detail.isError = false;
  }
});
