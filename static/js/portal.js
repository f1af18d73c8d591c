// Every page: tell the server the reader's time zone, so moments are written in it.
(() => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const current = document.cookie.split("; ").find((item) => item.startsWith("tz="));
  if (zone && current !== `tz=${encodeURIComponent(zone)}`) {
    document.cookie = `tz=${encodeURIComponent(zone)}; path=/; max-age=31536000; samesite=lax`;
  }
})();

// Forms that destroy something ask first: <form data-confirm="Remove …?">.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// A table wider than a phone scrolls sideways in its .table-responsive box: keyboard users must be
// able to focus that box to scroll it.
const focusableScrollers = (root) => {
  for (const box of root.querySelectorAll(".table-responsive:not([tabindex])")) box.tabIndex = 0;
};
document.addEventListener("DOMContentLoaded", () => focusableScrollers(document));
document.addEventListener("htmx:afterSettle", (event) => focusableScrollers(event.target));

// A form that comes back with errors opens with their summary (templates/_form_fields.html): move the
// focus there, so the reader (on a phone, a screen reader) starts at the list of what to correct
// instead of at the top of a long page. After an htmx form submission too, but never for a request
// made while typing (a live check), which must not take the caret away.
const focusErrorSummary = (root) => {
  const summary = root.querySelector("[data-error-summary]");
  if (summary) summary.focus();
};
document.addEventListener("DOMContentLoaded", () => focusErrorSummary(document));
document.addEventListener("htmx:afterSettle", (event) => {
  const config = event.detail.requestConfig;
  if (config && config.triggeringEvent && config.triggeringEvent.type === "submit") {
    // An outerHTML swap leaves the old target out of the page: then look in the whole page.
    focusErrorSummary(event.target.isConnected ? event.target : document);
  }
});
