// The serial console page: xterm.js on the portal's serial socket. Binary messages are the VM's bytes;
// text messages are the portal's notes (JSON): "backlog" announces the end of the console's log, sent
// before the live output, and "live" says the live output follows.
const script = document.getElementById("console-serial-script").dataset;
const { Terminal } = await import(script.xterm);
const { FitAddon } = await import(script.fit);

// Large enough to read on a phone; the fit add-on then makes as many columns as the width allows.
const PHONE = window.matchMedia("(max-width: 575.98px)");
const terminal = new Terminal({ cursorBlink: true, scrollback: 5000, fontSize: PHONE.matches ? 13 : 15 });
const fit = new FitAddon();
terminal.loadAddon(fit);
terminal.open(document.getElementById("console-screen"));
fit.fit();
window.addEventListener("resize", () => fit.fit());
window.consoleTerminal = terminal;
const encoder = new TextEncoder();
const tell = (text) => window.consoleStatus.tell(text);
let socket = null;

const ARROWS = { ArrowUp: "A", ArrowDown: "B", ArrowRight: "C", ArrowLeft: "D" };
const KEYS = { Escape: "\x1b", Tab: "\t", "ctrl-c": "\x03" };

// What a key from the bar sends, as an xterm would: arrows with modifiers in xterm's form.
function sequenceFor(key, held) {
  if (key in ARROWS) {
    const modifiers = 1 + (held.alt ? 2 : 0) + (held.ctrl ? 4 : 0);
    return modifiers > 1 ? `\x1b[1;${modifiers}${ARROWS[key]}` : `\x1b[${ARROWS[key]}`;
  }
  const sequence = KEYS[key] ?? "";
  return held.alt ? `\x1b${sequence}` : sequence;
}

// A key typed on the keyboard while Ctrl or Alt is held on the bar.
function withHeld(data, held) {
  let result = data;
  if (held.ctrl && data.length === 1) {
    const code = data.toUpperCase().charCodeAt(0);
    if (code >= 64 && code <= 95) result = String.fromCharCode(code - 64);
  }
  return held.alt ? `\x1b${result}` : result;
}

function send(data) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
}

function note(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    return;
  }
  if (message.type === "backlog") {
    if (message.bytes > 0) {
      const size = message.bytes >= 1024 ? `${Math.round(message.bytes / 1024)} KiB` : `${message.bytes} bytes`;
      tell(`${message.truncated ? "Its last " : "All "}${size} of earlier output shown; live from here. Press Enter for a prompt.`);
    } else {
      tell(message.available ? "No earlier output. Press Enter for a prompt." : `No earlier output: ${message.reason}. Press Enter for a prompt.`);
    }
  }
}

window.consoleKeys.attach({
  send: (key, held) => send(sequenceFor(key, held)),
  focus: () => terminal.focus(),
});

window.startConsole("serial", (url, session) => {
  const client = new WebSocket(url);
  client.binaryType = "arraybuffer";
  socket = client;
  client.addEventListener("open", () => {
    terminal.reset();  // a reconnect replays the backlog: start from a clean screen
    session.connected();
    terminal.focus();
  });
  client.addEventListener("message", (event) => {
    if (typeof event.data === "string") note(event.data);
    else terminal.write(new Uint8Array(event.data));
  });
  client.addEventListener("close", (event) => {
    if (socket === client) socket = null;
    session.ended(`Disconnected${event.reason ? `: ${event.reason}` : ""}`);
  });
  return () => client.close();
});

terminal.onData((data) => {
  const held = window.consoleKeys.held();
  if (held.ctrl || held.alt) {
    send(withHeld(data, held));
    window.consoleKeys.typed(data.length === 1 ? data.toUpperCase() : "key");
    return;
  }
  send(data);
});
