// The navigation's unread count, kept live. Each message on /ws/notifications/ re-reads the count
// through its ordinary (scoped) view (data-badge-url), which answers the badge's HTML.
//
// The socket is kept by window.portalSocket (js/live_socket.js, loaded before this file by base.html):
// reopened after a drop (it sends the count as soon as it opens, so nothing missed meanwhile is lost).
// When the server says no (close codes 4000-4999) the script polls every 30 s, as it does from the
// start when the page has no socket (no shared channel layer). An answer of 286 (signed out) stops
// everything.
(() => {
  const POLL_MS = 30000;
  const STOP = 286;
  const badge = document.getElementById("nav-unread");
  if (!badge || !badge.dataset.badgeUrl) return;
  const path = badge.dataset.noticesSocket;

  let kept = null;
  let poller = null;
  let stopped = false;

  function stop() {
    stopped = true;
    clearInterval(poller);
    kept?.stop();
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

  if (!path) {
    poll();
    return;
  }
  kept = window.portalSocket.keep(path, { onMessage: reread, onRefused: poll });
})();
