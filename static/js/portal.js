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
