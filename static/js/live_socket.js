// Live updates for the pages that show what the workers change: the stack page and the stacks list.
//
// Markup: an element with an id, data-live-socket="/ws/…" and data-live-event="name". Each message
// on the socket fires that event on the element, and its hx-trigger re-reads it through the
// ordinary (scoped) view; the message itself carries no content worth showing.
//
// When the socket drops it is opened again after about 1 s, 2 s, 4 s… up to 30 s, and each time it
// opens the element is re-read once, so nothing that changed while it was away (or between the
// page being drawn and the socket opening) is missed. Close codes 4000-4999 are the server saying
// no (not signed in, not yours): the page stops trying and keeps its slow poll. htmx swaps the
// element (keeping its id), so it is looked up again each time; once it no longer asks for this
// socket (a deleted stack), the socket is closed for good.
(() => {
  const FIRST_DELAY_MS = 1000;
  const LONGEST_DELAY_MS = 30000;

  function watch(elementId, path) {
    let socket = null;
    let timer = null;
    let failures = 0; // connections in a row that did not open
    let stopped = false;

    const element = () => document.getElementById(elementId);
    const wanted = () => element()?.dataset.liveSocket === path;

    function nudge() {
      const target = element();
      if (target) target.dispatchEvent(new CustomEvent(target.dataset.liveEvent));
    }

    function stop() {
      stopped = true;
      clearTimeout(timer);
      timer = null;
      if (socket) socket.close(1000);
    }

    function connect() {
      timer = null;
      if (stopped) return;
      if (!wanted()) {
        stop();
        return;
      }
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const opening = new WebSocket(`${scheme}://${location.host}${path}`);
      socket = opening;
      opening.addEventListener("open", () => {
        failures = 0;
        nudge();
      });
      opening.addEventListener("message", () => (wanted() ? nudge() : stop()));
      opening.addEventListener("close", (event) => {
        if (socket === opening) socket = null;
        if (event.code >= 4000 && event.code <= 4999) {
          stopped = true;
          return;
        }
        later();
      });
    }

    function later() {
      if (stopped || timer !== null) return;
      // Doubling, a little jittered so that pages do not all come back in the same instant.
      const delay = Math.min(LONGEST_DELAY_MS, FIRST_DELAY_MS * 2 ** failures) * (0.8 + 0.2 * Math.random());
      failures += 1;
      timer = setTimeout(connect, delay);
    }

    function now() {
      // Back online, or back to the tab: try at once rather than wait out the delay.
      if (stopped || socket !== null || timer === null) return;
      clearTimeout(timer);
      connect();
    }

    window.addEventListener("online", now);
    document.addEventListener("visibilitychange", () => document.hidden || now());
    document.addEventListener("htmx:afterSettle", () => wanted() || stop());
    connect();
  }

  for (const element of document.querySelectorAll("[data-live-socket]")) {
    if (element.id) watch(element.id, element.dataset.liveSocket);
  }
})();
