// Sockets that the portal's pages keep open, and the live parts of the pages that show what the workers
// change (the stack page and the stacks list).
//
// window.portalSocket.keep(path, {wanted, onOpen, onMessage, onRefused, onDrop}) opens the socket at path
// and keeps it: when it drops (onDrop() says so) it is opened again after about 1 s, 2 s, 4 s… up to
// 30 s, and at once when the browser comes back online or the tab is shown again. Close codes 4000-4999
// are the server saying no (not signed in, not yours): no more tries, onRefused() says so. wanted() is
// asked before each try and each message; once it says no, the socket is closed for good. keep()
// answers {stop}.
//
// Markup of a live part: an element with an id, data-live-socket="/ws/…" and data-live-event="name".
// Each message on the socket fires that event on the element, and its hx-trigger re-reads it through
// the ordinary (scoped) view; the message itself carries no content worth showing. Each time the socket
// opens the element is re-read once, so nothing that changed while it was away (or between the page
// being drawn and the socket opening) is missed. A refused socket leaves the element its slow poll.
// htmx swaps the element (keeping its id), so it is looked up again each time; once it no longer asks
// for this socket (a deleted stack), the socket is closed for good.
//
// While a live part's socket is down the page is not live: "portal:live-paused" is fired on the document
// (live_status.js says so on the page), and "portal:live-resumed" once the socket is back and the part
// has been re-read, so what it shows is current again. Both carry {detail: {part: the element's id}}.
//
// base.html loads this file on every signed-in page (the navigation's unread count keeps a socket too);
// a page may load it again, and the second load does nothing.
(() => {
  if (window.portalSocket) return;

  const FIRST_DELAY_MS = 1000;
  const LONGEST_DELAY_MS = 30000;
  const nothing = () => {};

  function keep(
    path,
    { wanted = () => true, onOpen = nothing, onMessage = nothing, onRefused = nothing, onDrop = nothing } = {},
  ) {
    let socket = null;
    let timer = null;
    let failures = 0; // connections in a row that did not open
    let stopped = false;

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
        onOpen();
      });
      opening.addEventListener("message", (event) => (wanted() ? onMessage(event) : stop()));
      opening.addEventListener("close", (event) => {
        if (socket === opening) socket = null;
        if (event.code >= 4000 && event.code <= 4999) {
          stopped = true;
          onRefused();
          return;
        }
        if (!stopped) onDrop();
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
    connect();
    return { stop };
  }

  window.portalSocket = { keep };

  function watch(elementId, path) {
    const element = () => document.getElementById(elementId);
    const wanted = () => element()?.dataset.liveSocket === path;

    let away = false; // the socket dropped and the part has not been re-read since it came back
    let reopened = false;
    const tell = (name) => document.dispatchEvent(new CustomEvent(name, { detail: { part: elementId } }));

    function nudge() {
      const target = element();
      if (target) target.dispatchEvent(new CustomEvent(target.dataset.liveEvent));
    }

    function dropped() {
      away = true;
      reopened = false;
      tell("portal:live-paused");
    }

    function opened() {
      if (away) reopened = true;
      nudge();
    }

    const kept = keep(path, { wanted, onOpen: opened, onMessage: nudge, onDrop: dropped });
    document.addEventListener("htmx:afterSettle", (event) => {
      const stillWanted = wanted();
      if (!stillWanted) kept.stop();
      if (event.target.id !== elementId) return;
      // Back and re-read; or re-read into a state that needs no socket any more (a deleted stack).
      if (away && (reopened || !stillWanted)) {
        away = false;
        reopened = false;
        tell("portal:live-resumed");
      }
    });
  }

  for (const element of document.querySelectorAll("[data-live-socket]")) {
    if (element.id) watch(element.id, element.dataset.liveSocket);
  }
})();
