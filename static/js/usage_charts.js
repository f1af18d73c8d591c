// What guests and hosts used, as line charts: every canvas with data-usage-chart="<key>" draws
// island[key] from the data island named by data-usage-island (a json_script element):
// {labels?, unit: "percent" | "mib" | "bytes_sec", series: [{label, data}]}, labels falling back
// to the island's own. The figures that matter (peaks, averages) are written beside each chart
// for those who cannot see it; the chart shows their shape.
(() => {
  if (typeof Chart === "undefined") return;
  const UNITS = ["B", "KB", "MB", "GB", "TB"];
  const bytes = (value) => {
    let size = Math.abs(value);
    let unit = 0;
    while (size >= 1024 && unit < UNITS.length - 1) {
      size /= 1024;
      unit += 1;
    }
    return `${size.toFixed(unit && size < 10 ? 1 : 0)} ${UNITS[unit]}/s`;
  };
  const TICKS = {
    percent: (value) => `${Math.round(value * 10) / 10}%`,
    mib: (value) => `${Math.round(value)} MiB`,
    bytes_sec: bytes,
  };
  // Labels are moments as the portal writes them ("2026-11-26 14:05 CET"): the axis shows the clock part.
  const clock = (label) => String(label).split(" ").slice(1, 2).join("") || label;
  const islands = {};
  const island = (id) => {
    if (!(id in islands)) {
      const element = document.getElementById(id);
      islands[id] = element ? JSON.parse(element.textContent) : null;
    }
    return islands[id];
  };
  for (const canvas of document.querySelectorAll("canvas[data-usage-chart]")) {
    const data = island(canvas.dataset.usageIsland);
    const spec = data && data[canvas.dataset.usageChart];
    if (!spec) continue;
    const labels = spec.labels || data.labels;
    const tick = TICKS[spec.unit] || String;
    new Chart(canvas, {
      type: "line",
      data: {
        labels,
        datasets: spec.series.map((series) => ({
          label: series.label,
          data: series.data,
          pointRadius: 0,
          borderWidth: 2,
          spanGaps: false,
        })),
      },
      options: {
        animation: false,
        // Wide on a desktop, squarer on a phone; no fixed height in the markup (no inline styles).
        aspectRatio: window.matchMedia("(min-width: 768px)").matches ? 2.5 : 1.4,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxTicksLimit: 6, maxRotation: 0, callback: (_value, index) => clock(labels[index]) } },
          y: {
            beginAtZero: true,
            suggestedMax: spec.unit === "percent" ? 100 : undefined,
            ticks: { callback: (value) => tick(value) },
          },
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: (item) => `${item.dataset.label}: ${item.parsed.y === null ? "–" : tick(item.parsed.y)}`,
            },
          },
        },
      },
    });
  }
})();
