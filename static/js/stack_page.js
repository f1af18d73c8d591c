// The stack page: the lease countdown, and saying a changed status aloud.
(() => {
  // Whole seconds left, written the way people read a clock; "expired" rather than a negative time.
  function remaining(milliseconds) {
    const total = Math.floor(milliseconds / 1000);
    const days = Math.floor(total / 86400);
    const hours = Math.floor((total % 86400) / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const seconds = total % 60;
    const two = (number) => String(number).padStart(2, "0");
    if (days > 0) return `${days} day${days === 1 ? "" : "s"} ${hours} h ${two(minutes)} min`;
    if (hours > 0) return `${hours} h ${two(minutes)} min ${two(seconds)} s`;
    return `${minutes} min ${two(seconds)} s`;
  }

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

  document.addEventListener("htmx:afterSettle", () => {
    tick(); // a re-read part arrives with the server's text: replace it at once
    const text = statusText();
    if (announcer && text && text !== announced) {
      announced = text;
      announcer.textContent = `Status changed: ${text}`;
    }
  });
  tick();
  setInterval(tick, 1000);
})();
