// The navigation's unread count, kept live. Each message on /ws/notifications/ re-reads the count
// through its ordinary (scoped) view (data-badge-url), which answers the badge's HTML.
//
// When the socket drops it is opened again after about 1 s, 2 s, 4 s… up to 30 s (the socket sends the
// count as soon as it opens, so nothing missed meanwhile is lost). Close codes 4000-4999 are the server
// saying no: the script then polls every 30 s, as it does from the start when the page has no socket
// (no shared channel layer). An answer of 286 (signed out) stops everything.
(() => {
  const FIRST_DELAY_MS = 1000;
  const LONGEST_DELAY_MS = 30000;
  const POLL_MS = 30000;
  const STOP = 286;
  const badge = document.getElementById("nav-unread");
  if (!badge || !badge.dataset.badgeUrl) return;
  const path = badge.dataset.noticesSocket;

  let socket = null;
  let timer = null;
  let poller = null;
  let failures = 0;
  let stopped = false;

  function stop() {
    stopped = true;
    clearTimeout(timer);
    clearInterval(poller);
    if (socket) socket.close(1000);
  }

  async function reread() {
    try {
      const answer = await fetch(badge.dataset.badgeUrl, { credentials: "same-origin", cache: "no-store" });
      if (answer.status === STOP) stop();
      else if (answer.ok) badge.innerHTML = await answer.text();
    } catch {
      // Offline for a moment: the next message or poll tries again.
    }
  }

  function poll() {
    if (poller === null && !stopped) poller = setInterval(reread, POLL_MS);
  }

  function connect() {
    timer = null;
    if (stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const opening = new WebSocket(`${scheme}://${location.host}${path}`);
    socket = opening;
    opening.addEventListener("open", () => {
      failures = 0;
    });
    opening.addEventListener("message", reread);
    opening.addEventListener("close", (event) => {
      if (socket === opening) socket = null;
      if (event.code >= 4000 && event.code <= 4999) {
        poll();
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

  if (!path) {
    poll();
    return;
  }
  window.addEventListener("online", now);
  document.addEventListener("visibilitychange", () => document.hidden || now());
  connect();
})();
