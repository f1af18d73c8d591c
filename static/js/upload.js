// The upload page (/catalog/upload/): a disk image sent to the API's tus endpoint with tus-js-client,
// in parts of the server's chunk size. A dropped connection is retried from where the server stands;
// a page closed mid-way is picked up when the same file is chosen again for the same name (the
// upload's address is kept in localStorage). Once the last byte is in, the server checks and
// converts the file: the page asks how that goes until the version is ready or refused.
(() => {
  const form = document.getElementById("upload-form");
  if (!form || !window.tus) return;

  const config = form.dataset;
  const chunkSize = Number(config.chunkBytes);
  const maxBytes = Number(config.maxBytes);
  const element = (id) => document.getElementById(id);
  const buttons = {
    start: element("upload-start"),
    pause: element("upload-pause"),
    resume: element("upload-resume"),
    another: element("upload-another"),
  };
  const progress = element("upload-progress");
  const bar = element("upload-bar");
  const numbers = element("upload-numbers");
  const state = element("upload-state");
  const formError = element("upload-form-error");
  const inputs = ["project", "appliance", "version", "title", "port", "role", "file"].map(
    (name) => form.elements[name],
  );
  const POLL_MS = 2000;
  const RATE_WINDOW_MS = 8000;

  let upload = null;
  let samples = [];

  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  const size = (bytes) => {
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
  };
  const duration = (seconds) => window.portalDuration(Math.max(1, seconds));

  const show = (button, visible) => {
    button.hidden = !visible;
  };
  const lockForm = (locked) => {
    for (const input of inputs) input.disabled = locked;
    buttons.start.disabled = locked;
  };
  const say = (text, kind = "") => {
    state.replaceChildren();
    const line = document.createElement("p");
    line.className = kind ? `mb-0 text-${kind}-emphasis` : "mb-0";
    line.textContent = text;
    state.append(line);
  };

  const clearErrors = () => {
    formError.hidden = true;
    formError.textContent = "";
    for (const input of inputs) {
      input.classList.remove("is-invalid");
      input.removeAttribute("aria-invalid");
      element(`${input.id}-error`).textContent = "";
    }
  };
  const fieldError = (name, message) => {
    const input = form.elements[name];
    input.classList.add("is-invalid");
    input.setAttribute("aria-invalid", "true");
    element(`${input.id}-error`).textContent = message;
  };
  // The API's error body ({code, detail, fields}) on the form: a field's message under its field.
  const showRefusal = (body) => {
    const fields = body.fields || {};
    let placed = false;
    for (const [name, messages] of Object.entries(fields)) {
      const target = name === "Upload-Length" ? "file" : name;
      if (form.elements[target] && form.elements[target].id) {
        fieldError(target, messages.join(" "));
        placed = true;
      }
    }
    if (!placed) {
      formError.textContent = body.detail || "The upload was refused.";
      formError.hidden = false;
    }
  };

  const showProgress = (sent, total) => {
    const now = performance.now();
    if (samples.length && sent < samples[samples.length - 1].sent) samples = []; // a retried part starts over
    samples.push({ at: now, sent });
    while (samples.length > 2 && now - samples[0].at > RATE_WINDOW_MS) samples.shift();
    const percent = total ? Math.floor((sent / total) * 100) : 0;
    bar.querySelector(".progress-bar").style.width = `${percent}%`;
    bar.setAttribute("aria-valuenow", String(percent));
    let text = `${size(sent)} of ${size(total)} (${percent}%)`;
    const first = samples[0];
    const seconds = (now - first.at) / 1000;
    if (seconds > 0.5 && sent > first.sent) {
      const rate = (sent - first.sent) / seconds;
      text += ` · ${size(rate)}/s · about ${duration((total - sent) / rate)} left`;
    }
    numbers.textContent = text;
  };

  const applianceLink = (applianceId, label) => {
    const link = document.createElement("a");
    link.href = config.applianceUrl.replace(config.applianceIdSlot, String(applianceId));
    link.textContent = label;
    return link;
  };

  const finished = () => {
    show(buttons.pause, false);
    show(buttons.resume, false);
    show(buttons.another, true);
    upload = null;
  };

  // After the last byte: the server checks and converts the file. Ask until it says how that ended.
  const follow = async (url) => {
    show(buttons.pause, false);
    show(buttons.resume, false);
    say("All bytes sent. Checking and converting the image…");
    let delay = POLL_MS;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      let body = null;
      try {
        const response = await fetch(url, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          cache: "no-store",
        });
        if (response.status === 404) {
          say("The upload is gone: it was deleted or expired.", "danger");
          return finished();
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        body = await response.json();
      } catch {
        delay = Math.min(delay * 2, 30000); // the portal is away for a moment: ask less often
        continue;
      }
      delay = POLL_MS;
      if (body.status === "ready") {
        state.replaceChildren();
        const line = document.createElement("p");
        line.className = "mb-0 text-success-emphasis";
        line.append(`Ready: ${body.appliance} ${body.version} is in the catalog. `);
        line.append(applianceLink(body.appliance_id, `Open ${body.appliance}`));
        state.append(line);
        state.dataset.outcome = "ready";
        return finished();
      }
      if (body.status === "failed") {
        say(`The image was refused: ${body.error}`, "danger");
        state.dataset.outcome = "failed";
        return finished();
      }
    }
  };

  const failed = (error) => {
    const response = error && error.originalResponse;
    let body = null;
    try {
      body = response ? JSON.parse(response.getBody()) : null;
    } catch {
      body = null;
    }
    const status = response ? response.getStatus() : 0;
    if (body && status >= 400 && status < 500 && !upload.url) {
      // Refused at creation (a name taken, a project at its limit): fix the form and send again.
      showRefusal(body);
      progress.hidden = true;
      upload = null;
      lockForm(false);
      show(buttons.pause, false);
      return;
    }
    say(
      body && body.detail
        ? `The upload stopped: ${body.detail}`
        : "The upload stopped: the portal could not be reached. Resume when the connection is back.",
      "danger",
    );
    show(buttons.pause, false);
    show(buttons.resume, status === 0 || status >= 500 || status === 409 || status === 423);
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const file = form.elements.file.files[0];
    if (!file) return;
    if (file.size > maxBytes) {
      fieldError("file", `The file is ${size(file.size)}; the portal takes images of at most ${size(maxBytes)}.`);
      return;
    }
    if (file.size === 0) {
      fieldError("file", "The file is empty.");
      return;
    }
    const metadata = {
      project: form.elements.project.value,
      appliance: form.elements.appliance.value.trim(),
      version: form.elements.version.value.trim(),
      title: form.elements.title.value.trim(),
      filename: file.name,
    };
    // Optional: left out when empty, so an upload without them sends what it always sent.
    const port = form.elements.port.value.trim();
    const role = form.elements.role.value.trim();
    if (port) metadata.port = port;
    if (role) metadata.role = role;
    upload = new window.tus.Upload(file, {
      endpoint: config.endpoint,
      chunkSize,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata,
      headers: { "X-CSRFToken": config.csrfToken },
      // The same file sent as another appliance or version is another upload, not this one resumed.
      // The port and role are not part of it: they belong to the upload as first created, which a
      // resumed one keeps (so fingerprints stored before they existed still find their uploads).
      fingerprint: (chosen) =>
        Promise.resolve(
          ["stackportal-upload", metadata.project, metadata.appliance, metadata.version, chosen.name, chosen.size,
            chosen.lastModified].join("/"),
        ),
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: showProgress,
      onSuccess: () => follow(upload.url),
      onError: failed,
    });
    lockForm(true);
    samples = [];
    delete state.dataset.outcome;
    progress.hidden = false;
    showProgress(0, file.size);
    const previous = await upload.findPreviousUploads();
    if (previous.length) {
      upload.resumeFromPreviousUpload(previous[0]);
      say("Picking up an earlier upload of this file where it stopped…");
    } else {
      say("Sending…");
    }
    show(buttons.pause, true);
    upload.start();
  });

  buttons.pause.addEventListener("click", async () => {
    if (!upload) return;
    show(buttons.pause, false);
    await upload.abort();
    samples = [];
    say("Paused. What was sent is kept.");
    show(buttons.resume, true);
    buttons.resume.focus();
  });

  buttons.resume.addEventListener("click", () => {
    if (!upload) return;
    show(buttons.resume, false);
    show(buttons.pause, true);
    say("Sending…");
    upload.start();
    buttons.pause.focus();
  });

  buttons.another.addEventListener("click", () => {
    form.reset();
    clearErrors();
    lockForm(false);
    progress.hidden = true;
    show(buttons.another, false);
    form.elements.appliance.focus();
  });
})();
