// The stack page: the lease countdown, saying a changed status aloud, taking away messages its stack
// has outgrown, and keeping the actions column steady while someone is using it.
(() => {
  // Whole seconds left, written as the server writes durations (portal.js); "expired" rather than a
  // negative time.
  const remaining = (milliseconds) => window.portalDuration(Math.floor(milliseconds / 1000));

  // Python writes microseconds; not every browser parses more than milliseconds.
  const instant = (text) => Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));

  function tick() {
    const now = Date.now();
    for (const element of document.querySelectorAll("time[data-countdown]")) {
      const end = instant(element.getAttribute("datetime") || "");
      if (Number.isNaN(end)) continue;
      const left = end - now;
      const text = left <= 0 ? "expired" : `${remaining(left)} left`;
      if (element.textContent !== text) element.textContent = text;
    }
  }

  // The status part is re-read as a whole; only a change of status is worth interrupting for.
  const announcer = document.getElementById("stack-announcer");
  const statusText = () => document.getElementById("stack-status")?.dataset.statusText;
  let announced = statusText();

  // A message on top that tells of a state ("is being built") holds only while the stack is in it
  // (data-while="while-pending while-building"): once a re-read shows the stack elsewhere, it goes.
  function dropOutdatedMessages() {
    const status = document.getElementById("stack-status")?.dataset.status;
    if (!status) return;
    for (const message of document.querySelectorAll("#main > .alert[data-while]")) {
      const holds = message.dataset.while.split(/\s+/).filter((tag) => tag.startsWith("while-"));
      if (holds.length && !holds.includes(`while-${status}`)) message.remove();
    }
  }

  document.addEventListener("htmx:afterSettle", () => {
    tick(); // a re-read part arrives with the server's text: replace it at once
    dropOutdatedMessages();
    const text = statusText();
    if (announcer && text && text !== announced) {
      announced = text;
      announcer.textContent = `Status changed: ${text}`;
    }
  });
  dropOutdatedMessages();
  tick();
  setInterval(tick, 1000);

  // The actions column comes again with every re-read of the live part (hx-swap-oob). Swapped in when
  // nothing in it changed, it would throw away a half-typed snapshot name; swapped under an open dialog,
  // it would leave the dialog's backdrop behind. So it is swapped only when it changed (its key), with
  // what the person typed carried over, and never under a dialog: then the live part is read again
  // once the dialog closes.
  let waitingForDialog = false;

  function carryOver(from, to) {
    for (const field of from.querySelectorAll("input[id], select[id], textarea[id]")) {
      const twin = to.querySelector(`#${CSS.escape(field.id)}`);
      if (!twin || twin.tagName !== field.tagName || twin.type !== field.type) continue;
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked !== field.defaultChecked) twin.checked = field.checked;
      } else if (field.tagName === "SELECT") {
        const chosen = field.selectedOptions[0];
        if (chosen && !chosen.defaultSelected && [...twin.options].some((o) => o.value === field.value)) {
          twin.value = field.value;
        }
      } else if (field.value !== field.defaultValue) {
        twin.value = field.value;
      }
    }
  }

  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    const current = event.detail.target;
    if (!current || current.id !== "stack-actions") return;
    const incoming = event.detail.fragment.querySelector("#stack-actions");
    if (!incoming) return;
    if (incoming.dataset.actionsKey === current.dataset.actionsKey) {
      event.preventDefault();
      return;
    }
    if (current.querySelector(".modal.show")) {
      waitingForDialog = true;
      event.preventDefault();
      return;
    }
    carryOver(current, incoming);
  });

  document.addEventListener("hidden.bs.modal", () => {
    if (!waitingForDialog) return;
    waitingForDialog = false;
    const part = document.getElementById("stack-status");
    const address = part && part.getAttribute("hx-get");
    if (address) window.htmx.ajax("GET", address, { source: part, target: part, swap: "outerHTML" });
  });
})();
