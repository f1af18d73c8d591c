// What both console pages share: a fresh ticket for every connection, the connect / give up /
// reconnect cycle, and the two status lines (both live regions, so screen readers hear them too).
//
// #console-status says what the console is doing (Connecting…, Connected, Disconnected: why);
// #console-notice says what the last action did (Ctrl-Alt-Del sent, Ctrl held for the next key…)
// and clears itself after a while.
//
// window.startConsole(kind, open) connects now and on "Reconnect", each time with a fresh ticket.
// open(url, session) starts the client and returns a function that stops it; the client calls
// session.connected() and session.ended(text). An attempt with no answer in CONNECT_SECONDS is given
// up and says so, rather than "Connecting…" for good; a Reconnect replaces the attempt, and the old
// one's late events are ignored. window.consoleSession.live() says whether a console is connected now.
(() => {
  const CONNECT_SECONDS = 30;
  const NOTICE_SECONDS = 8;
  const page = document.getElementById("console-page").dataset;
  const screen = document.getElementById("console-screen");
  const status = document.getElementById("console-status");
  const notice = document.getElementById("console-notice");
  const reconnect = document.getElementById("console-reconnect");
  let noticeTimer = null;

  function say(text) {
    status.textContent = text;
  }

  function tell(text) {
    clearTimeout(noticeTimer);
    notice.textContent = text;
    noticeTimer = setTimeout(() => { notice.textContent = ""; }, NOTICE_SECONDS * 1000);
  }

  window.consoleStatus = { say, tell };

  window.getConsoleUrl = async (kind) => {
    const response = await fetch(page.ticketUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": page.csrfToken },
      body: JSON.stringify({ kind }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || `the portal answered ${response.status}`);
    return body.url;
  };

  let current = null;
  window.consoleSession = { live: () => current !== null && current.live() && screen.dataset.connected === "yes" };

  function newSession() {
    let over = false;
    let timer = null;
    const session = {
      live: () => current === session && !over,
      connected: () => {
        if (!session.live()) return;
        clearTimeout(timer);
        say("Connected");
        screen.dataset.connected = "yes";
      },
      ended: (text) => {
        if (!session.live()) return;
        over = true;
        clearTimeout(timer);
        screen.dataset.connected = "no";
        say(text);
        reconnect.hidden = false;
      },
      giveUpAfter: (seconds, stopClient) => {
        timer = setTimeout(() => {
          session.ended(`No answer from the console in ${seconds} s`);
          stopClient();
        }, seconds * 1000);
      },
    };
    return session;
  }

  window.startConsole = (kind, open) => {
    async function connect(again) {
      reconnect.hidden = true;
      screen.dataset.connected = "no";
      say(again ? "Reconnecting…" : "Connecting…");
      const session = (current = newSession());
      let stop = () => {};
      session.giveUpAfter(CONNECT_SECONDS, () => stop());
      let url;
      try {
        url = await window.getConsoleUrl(kind);
      } catch (error) {
        session.ended(`Cannot open the console: ${error.message}`);
        return;
      }
      if (session.live()) stop = open(url, session) || stop;
    }
    reconnect.addEventListener("click", () => connect(true));
    connect(false);
  };

  // The keys bar goes full screen with the console: a phone in full screen still needs its keys.
  const frame = document.getElementById("console-frame");
  document.getElementById("console-fullscreen").addEventListener("click", () => {
    if (!frame.requestFullscreen) {
      tell("This browser cannot show the console full screen");
      return;
    }
    frame.requestFullscreen().then(
      () => tell("Full screen: Esc leaves it"),
      () => tell("The browser refused full screen"),
    );
  });
})();
