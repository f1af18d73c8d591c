// The extra-keys bar (#console-keys): keys a phone's keyboard lacks, for either console.
//
// Each console page tells it how its console sends keys: window.consoleKeys.attach(sender) with
//   sender.send(key, held)  key: a button's data-key (Escape, Tab, ArrowUp…, ctrl-c, ctrl-alt-del),
//                           held: {ctrl, alt}, the sticky modifiers pressed on the bar before it;
//   sender.hold(modifier, down)  optional: the console presses or lets go of the modifier itself
//                           (the screen does, so a key typed on the keyboard gets it too);
//   sender.focus()          gives the keyboard back to the console.
// Ctrl and Alt are sticky: pressed once (aria-pressed shows it), they apply to the next key, from the
// bar or from the keyboard, and then let go. Every press says what it did in the notice line.
(() => {
  const bar = document.getElementById("console-keys");
  if (!bar) return;
  const held = { ctrl: false, alt: false };
  const NAMES = { ctrl: "Ctrl", alt: "Alt" };
  let sender = null;

  const tell = (text) => window.consoleStatus.tell(text);
  const heldPrefix = () => ["ctrl", "alt"].filter((m) => held[m]).map((m) => `${NAMES[m]}-`).join("");

  function setHeld(modifier, down) {
    if (held[modifier] === down) return;
    held[modifier] = down;
    bar.querySelector(`[data-modifier="${modifier}"]`).setAttribute("aria-pressed", String(down));
    if (sender && sender.hold) sender.hold(modifier, down);
  }

  function letGo() {
    setHeld("ctrl", false);
    setHeld("alt", false);
  }

  bar.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (!sender || !window.consoleSession.live()) {
      letGo();
      tell("Not connected: no key was sent");
      return;
    }
    const modifier = button.dataset.modifier;
    if (modifier) {
      setHeld(modifier, !held[modifier]);
      tell(held[modifier] ? `${NAMES[modifier]} held for the next key` : `${NAMES[modifier]} let go`);
    } else {
      const name = `${heldPrefix()}${button.dataset.label || button.textContent.trim()}`;
      sender.send(button.dataset.key, { ...held });
      letGo();
      tell(`${name} sent`);
    }
    sender.focus();
  });

  window.consoleKeys = {
    attach(consoleSender) {
      sender = consoleSender;
    },
    held: () => ({ ...held }),
    // A key typed on the device's own keyboard took the held modifiers with it: say so, let them go.
    typed(label) {
      if (!held.ctrl && !held.alt) return;
      tell(`${heldPrefix()}${label} sent`);
      letGo();
    },
    letGo,
  };
})();
