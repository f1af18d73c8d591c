// The launch dialog and the launch pages: one form (provisioning/_launch_form.html) that the server
// renders with its preview. Each choice asks the server for the form again with the preview for it;
// Launch sends the form in place, and a refused launch comes back with the problem next to its field.
(() => {
  const HEADER = "X-Launch-Dialog";
  const dialog = document.getElementById("launch-dialog");
  let asked = 0; // answers to older questions are dropped: the reader has chosen again since

  // A polite live region outside the form: the form is replaced on each answer, so a region inside
  // it would not be announced.
  const announcer = document.createElement("div");
  announcer.className = "visually-hidden";
  announcer.setAttribute("aria-live", "polite");
  document.body.append(announcer);

  const announce = (form) => {
    const verdict = form.querySelector("[data-launch-verdict]");
    announcer.textContent = verdict ? verdict.textContent.replace(/\s+/g, " ").trim() : "";
  };

  const values = (form) => {
    const params = new URLSearchParams(new FormData(form));
    params.delete("csrfmiddlewaretoken");
    // A name the server suggested follows the choice (another appliance, another suggestion).
    if (form.querySelector("input[name=name][data-suggested]")) params.delete("name");
    return params;
  };

  const showProblem = (form, text) => {
    let box = form.querySelector("[data-launch-trouble]");
    if (!box) {
      box = document.createElement("div");
      box.className = "alert alert-danger mt-3 mb-0";
      box.setAttribute("role", "alert");
      box.dataset.launchTrouble = "";
      form.querySelector(".launch-actions").before(box);
    }
    box.textContent = text;
  };

  const ask = async (form, url, init) => {
    const mine = ++asked;
    const mode = form.dataset.launchMode;
    let response;
    try {
      response = await fetch(url, { ...init, headers: { [HEADER]: mode }, credentials: "same-origin" });
    } catch {
      showProblem(form, "The portal could not be reached. Check your connection and try again.");
      return;
    }
    if (mine !== asked) return;
    const location = response.headers.get("X-Launch-Location");
    if (location) {
      window.location.assign(location);
      return;
    }
    if (!response.ok) {
      showProblem(form, `The portal could not answer (error ${response.status}). Try again in a moment.`);
      return;
    }
    const focused = form.contains(document.activeElement) ? document.activeElement.id : "";
    const holder = document.createElement("div");
    holder.innerHTML = await response.text();
    const fresh = holder.querySelector("[data-launch-form]");
    form.replaceWith(fresh);
    wire(fresh);
    const invalid = fresh.querySelector(".is-invalid");
    const target = (init.method === "POST" && invalid) || (focused && document.getElementById(focused));
    if (target) target.focus();
    else if (mode === "modal") fresh.querySelector("select[name=appliance_version], input[name=name]")?.focus();
    announce(fresh);
  };

  // The browser checks the name against the rule's pattern; a bad one is said next to the field
  // and nothing is sent.
  const nameIsGood = (form) => {
    const name = form.querySelector("input[name=name]");
    if (!name || name.checkValidity()) return true;
    const error = document.getElementById(`${name.id}_error`);
    error.textContent = name.validity.valueMissing ? "Give the stack a name." : name.dataset.invalidMessage;
    error.classList.add("d-block");
    name.classList.add("is-invalid");
    name.setAttribute("aria-invalid", "true");
    const described = new Set((name.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
    described.add(error.id);
    name.setAttribute("aria-describedby", [...described].join(" "));
    name.focus();
    return false;
  };

  const wire = (form) => {
    form.addEventListener("change", (event) => {
      if (event.target.tagName !== "SELECT") return;
      ask(form, `${form.action}?${values(form)}`, { method: "GET" });
    });
    form.addEventListener("input", (event) => {
      const name = event.target;
      if (name.name !== "name") return;
      delete name.dataset.suggested;
      if (!name.checkValidity()) return;
      name.classList.remove("is-invalid");
      name.removeAttribute("aria-invalid");
      const error = document.getElementById(`${name.id}_error`);
      if (error) {
        error.textContent = "";
        error.classList.remove("d-block");
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (event.submitter && event.submitter.name === "preview") return;
      if (!nameIsGood(form)) return;
      const button = form.querySelector("[data-launch-submit]");
      button.disabled = true;
      button.textContent = "Launching…";
      ask(form, form.action, { method: "POST", body: new FormData(form) });
    });
  };

  for (const form of document.querySelectorAll("[data-launch-form]")) wire(form);

  if (!dialog) return;
  dialog.addEventListener("show.bs.modal", (event) => {
    const button = event.relatedTarget;
    const params = new URLSearchParams();
    const data = (button && button.dataset) || {};
    if (data.version) params.set("version", data.version);
    if (data.name) params.set("name", data.name);
    // The project the reader came from: the button's, else the one the page is about.
    const project = data.project || new URLSearchParams(window.location.search).get("project");
    if (project) params.set("project", project);
    // The dialog opens at once with a note that the form is on its way.
    const loading = document.createElement("form");
    loading.className = "modal-content";
    loading.dataset.launchMode = "modal";
    loading.innerHTML =
      '<div class="modal-header"><h2 class="modal-title h5" id="launch-dialog-title">Launch</h2></div>' +
      '<div class="modal-body"><p class="mb-0">Loading the launch form…</p></div>' +
      '<div class="launch-actions"></div>';
    dialog.querySelector(".modal-content").replaceWith(loading);
    ask(loading, `${dialog.dataset.launchUrl}?${params}`, { method: "GET" });
  });
})();
