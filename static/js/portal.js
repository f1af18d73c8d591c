// Every page: tell the server the reader's time zone, so moments are written in it.
(() => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const current = document.cookie.split("; ").find((item) => item.startsWith("tz="));
  if (zone && current !== `tz=${encodeURIComponent(zone)}`) {
    document.cookie = `tz=${encodeURIComponent(zone)}; path=/; max-age=31536000; samesite=lax`;
  }
})();

// One way to write a duration, as portal/moments.py's duration_text does on the server: the largest
// unit and the next one, in words, cut rather than rounded ("1 hour 59 minutes", "4 minutes 3 seconds").
window.portalDuration = (seconds) => {
  if (seconds > 0 && seconds < 1) return "less than a second";
  let rest = Math.max(Math.floor(seconds), 0);
  const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  const counted = (count, name) => `${count} ${name}${count === 1 ? "" : "s"}`;
  for (let index = 0; index < units.length - 1; index += 1) {
    const [name, size] = units[index];
    const [nextName, nextSize] = units[index + 1];
    if (rest >= size) {
      const count = Math.floor(rest / size);
      rest -= count * size;
      return rest >= nextSize ? `${counted(count, name)} ${counted(Math.floor(rest / nextSize), nextName)}` : counted(count, name);
    }
  }
  return counted(rest, "second");
};

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
