// The launch dialog: fills in the version a Launch button names, and shows what the launch would
// take from the chosen project's quota before anything is sent (the server checks again).
(() => {
  const dialog = document.getElementById("launch-dialog");
  if (!dialog) return;
  const projects = JSON.parse(document.getElementById("launch-projects").textContent);
  // Prices per unit-hour (usage/pricing.py): what a launch costs is shown before it is sent.
  const prices = JSON.parse(document.getElementById("launch-prices")?.textContent || "null");
  const field = (name) => dialog.querySelector(`[data-launch-${name}]`);
  let cost = {};

  const render = () => {
    const project = projects.find((item) => String(item.id) === field("project").value);
    const body = field("quota");
    body.replaceChildren();
    if (!project) return;
    const over = [];
    for (const line of project.lines) {
      const wanted = cost[line.key] || 0;
      const after = line.used + wanted;
      const row = body.insertRow();
      const cells = [line.what, `+${wanted}`, String(after), String(line.limit)];
      cells.forEach((text, index) => {
        const cell = row.insertCell();
        cell.textContent = text;
        if (index > 0) cell.className = "text-end";
      });
      if (after > line.limit) {
        row.classList.add("table-danger");
        over.push(`${line.what} (${after} of ${line.limit})`);
      }
    }
    const lease = Number(field("lease").value);
    if (lease > project.max_lease_seconds) over.push("the lease is longer than the project allows");
    const verdict = field("verdict");
    verdict.textContent = over.length
      ? `Over the quota of ${project.name}: ${over.join(", ")}. The launch will be refused.`
      : `Within the quota of ${project.name}.`;
    verdict.className = `small mb-0 ${over.length ? "text-danger-emphasis fw-semibold" : "text-success-emphasis"}`;
    if (prices) {
      const perHour =
        (cost.vcpus || 0) * Number(prices.vcpu_hour) +
        ((cost.memory_mib || 0) / 1024) * Number(prices.memory_gib_hour) +
        (cost.disk_gib || 0) * Number(prices.disk_gib_hour);
      field("price").textContent =
        `About ${perHour.toFixed(2)} ${prices.currency} an hour while it runs, ` +
        `${((perHour * lease) / 3600).toFixed(2)} ${prices.currency} for the whole lease.`;
    }
  };

  dialog.addEventListener("show.bs.modal", (event) => {
    const button = event.relatedTarget;
    if (!button) return;
    field("version").value = button.dataset.version;
    field("title").textContent = button.dataset.title;
    field("name").value = button.dataset.name;
    cost = {};
    for (const [key, value] of Object.entries(button.dataset)) {
      if (key.startsWith("cost")) cost[key.slice(4).replace(/^./, (c) => c.toLowerCase())] = Number(value);
    }
    render();
  });
  field("project").addEventListener("change", render);
  field("lease").addEventListener("change", render);
})();
