// The screen page: noVNC on the portal's VNC socket (its binary protocol; the proxy offers security
// type None and does the VM's VNC authentication itself, so no password prompt appears).
const script = document.getElementById("console-vnc-script").dataset;
const { default: RFB } = await import(script.rfb);

const screen = document.getElementById("console-screen");
const clipboard = document.getElementById("console-clipboard");
const fitButton = document.getElementById("console-fit");
const tell = (text) => window.consoleStatus.tell(text);
let rfb = null;

// X11 keysyms and the key codes noVNC sends with them.
const KEYSYMS = {
  Escape: [0xff1b, "Escape"],
  Tab: [0xff09, "Tab"],
  ArrowLeft: [0xff51, "ArrowLeft"],
  ArrowUp: [0xff52, "ArrowUp"],
  ArrowRight: [0xff53, "ArrowRight"],
  ArrowDown: [0xff54, "ArrowDown"],
};
const MODIFIERS = { ctrl: [0xffe3, "ControlLeft"], alt: [0xffe9, "AltLeft"] };
const LETTER_C = [0x63, "KeyC"];

function tap([keysym, code]) {
  rfb.sendKey(keysym, code, true);
  rfb.sendKey(keysym, code, false);
}

window.consoleKeys.attach({
  send(key) {
    if (!rfb) return;
    if (key === "ctrl-alt-del") {
      rfb.sendCtrlAltDel();
    } else if (key === "ctrl-c") {
      rfb.sendKey(...MODIFIERS.ctrl, true);
      tap(LETTER_C);
      rfb.sendKey(...MODIFIERS.ctrl, false);
    } else if (key in KEYSYMS) {
      tap(KEYSYMS[key]); // a held Ctrl or Alt is down on the VM's side already (hold)
    }
  },
  hold(modifier, down) {
    if (rfb) rfb.sendKey(...MODIFIERS[modifier], down);
  },
  focus: () => rfb && rfb.focus(),
});

// A key typed on the keyboard while Ctrl or Alt is held from the bar went to the VM with it: let go after it.
// Keys pressed on the page's own controls (the bar's buttons, the clipboard box) are not the VM's.
document.addEventListener(
  "keyup",
  (event) => {
    if (!screen.contains(event.target) || ["Control", "Alt", "Shift", "Meta"].includes(event.key)) return;
    window.consoleKeys.typed(event.key.length === 1 ? event.key.toUpperCase() : event.key);
  },
  true,
);

function showFit(fit) {
  fitButton.setAttribute("aria-pressed", String(fit));
  screen.dataset.fit = fit ? "yes" : "no";
  if (rfb) rfb.scaleViewport = fit;
}

fitButton.addEventListener("click", () => {
  const fit = fitButton.getAttribute("aria-pressed") !== "true";
  showFit(fit);
  tell(fit ? "Scaled to fit the window" : "Shown at its real size: scroll to see all of it");
});

window.startConsole("vnc", (url, session) => {
  const client = new RFB(screen, url, { wsProtocols: ["binary"] });
  client.scaleViewport = fitButton.getAttribute("aria-pressed") === "true";
  client.background = "#111";
  rfb = window.consoleRfb = client;
  client.addEventListener("connect", session.connected);
  client.addEventListener("disconnect", (event) => {
    if (rfb === client) rfb = null;
    window.consoleKeys.letGo();
    session.ended(event.detail.clean ? "Disconnected" : "The connection was lost or refused");
  });
  client.addEventListener("clipboard", (event) => {
    clipboard.value = event.detail.text;
    tell("The VM copied text: it is in the Clipboard box below");
  });
  return () => client.disconnect();
});

document.getElementById("console-clipboard-send").addEventListener("click", () => {
  if (!rfb || !window.consoleSession.live()) {
    tell("Not connected: nothing was sent");
    return;
  }
  rfb.clipboardPasteFrom(clipboard.value);
  tell(`${clipboard.value.length} characters sent to the VM's clipboard`);
});

// The serial console's log, read when the box is opened and on Refresh, shown as plain text.
const logBox = document.getElementById("console-log-box");
const log = document.getElementById("console-log");
async function loadLog() {
  log.textContent = "Loading…";
  try {
    const response = await fetch(logBox.dataset.logUrl, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || `the portal answered ${response.status}`);
    log.textContent = body.available ? body.text || "(nothing yet)" : `Not available: ${body.reason}`;
    log.scrollTop = log.scrollHeight;
    tell(body.truncated ? "Serial console log loaded (its last 64 KiB)" : "Serial console log loaded");
  } catch (error) {
    log.textContent = "";
    tell(`Cannot read the serial console log: ${error.message}`);
  }
}
logBox.addEventListener("toggle", () => logBox.open && loadLog());
document.getElementById("console-log-refresh").addEventListener("click", loadLog);
