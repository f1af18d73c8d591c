// Says on the page when its live parts stop following the server, and when they follow it again.
//
// A live part is an element with data-live-part that htmx re-reads (the stack page's status, the stacks
// list). Pushed parts (data-live-socket) are watched by live_socket.js, which fires "portal:live-paused"
// when the socket drops and "portal:live-resumed" once it is back and the part re-read. A part that only
// polls is paused when a re-read cannot reach the server and resumed by the next one that arrives.
// The words go into #live-status (base.html), a polite live region kept in view above the content:
// "Live updates paused: reconnecting…" while the browser believes it is online, "Offline since 14:05
// CET" once it says it is not, and a short "back" note when every part is current again.
(() => {
  if (window.portalLiveStatus) return;
  window.portalLiveStatus = true;

  const region = document.getElementById("live-status");
  if (!region) return;

  // A socket that comes back within a moment (a server restart) is not worth a banner.
  const GRACE_MS = 1000;
  const BACK_NOTE_MS = 4000;
  const paused = new Map(); // part id -> when it was paused
  let showTimer = null;
  let clearTimer = null;
  let leaving = false; // sockets close as the page is left: that is no outage

  // The reader's zone (the one the server writes moments in), as "14:05 CET".
  const clock = (() => {
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
    try {
      return new Intl.DateTimeFormat("en-GB", { ...options, timeZone: document.documentElement.dataset.timeZone });
    } catch {
      return new Intl.DateTimeFormat("en-GB", options);
    }
  })();

  function moment(date) {
    const element = document.createElement("time");
    element.dateTime = date.toISOString();
    element.textContent = clock.format(date);
    return element;
  }

  function banner(kind, ...parts) {
    const alert = document.createElement("div");
    alert.className = `alert alert-${kind} py-2`;
    alert.dataset.liveState = kind === "success" ? "back" : "paused";
    alert.append(...parts);
    return alert;
  }

  function strong(...parts) {
    const element = document.createElement("strong");
    element.append(...parts);
    return element;
  }

  function showPaused() {
    showTimer = null;
    if (!paused.size || leaving) return;
    clearTimeout(clearTimer);
    const since = new Date(Math.min(...paused.values()));
    const stale = " What the page shows may be out of date.";
    if (navigator.onLine === false) {
      region.replaceChildren(
        banner("warning", strong("Offline since ", moment(since), "."), ` Live updates resume once the connection is back.${stale}`),
      );
    } else {
      region.replaceChildren(
        banner("warning", strong("Live updates paused: reconnecting…"), " Since ", moment(since), `.${stale}`),
      );
    }
  }

  function pause(part) {
    if (leaving || paused.has(part)) return;
    paused.set(part, Date.now());
    if (region.querySelector("[data-live-state=paused]")) showPaused();
    else if (showTimer === null) showTimer = setTimeout(showPaused, GRACE_MS);
  }

  function resume(part) {
    if (!paused.delete(part) || paused.size) return;
    clearTimeout(showTimer);
    showTimer = null;
    if (!region.querySelector("[data-live-state=paused]")) return; // never shown: nothing to take back
    region.replaceChildren(banner("success", "Live updates are back: the page shows the current state."));
    clearTimer = setTimeout(() => region.replaceChildren(), BACK_NOTE_MS);
  }

  document.addEventListener("portal:live-paused", (event) => pause(event.detail.part));
  document.addEventListener("portal:live-resumed", (event) => resume(event.detail.part));

  // Parts without a socket: a re-read that cannot reach the server pauses them, the next one resumes them.
  const polledPart = (element) => element?.id && element.hasAttribute("data-live-part") && !element.dataset.liveSocket;
  document.addEventListener("htmx:sendError", (event) => polledPart(event.detail.elt) && pause(event.detail.elt.id));
  document.addEventListener("htmx:afterSettle", (event) => polledPart(event.target) && resume(event.target.id));

  // The words follow the browser's own view of the network.
  for (const name of ["online", "offline"]) {
    window.addEventListener(name, () => region.querySelector("[data-live-state=paused]") && showPaused());
  }
  window.addEventListener("pagehide", () => {
    leaving = true;
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) leaving = false; // back from the browser's page cache
  });
})();
