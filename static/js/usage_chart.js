// The usage page's chart: cost per day, one bar part per stack, from the page's data island
// (#usage-chart-data). The table under the chart has the same figures for those who cannot see it.
(() => {
  const canvas = document.getElementById("usage-chart");
  const island = document.getElementById("usage-chart-data");
  if (!canvas || !island || typeof Chart === "undefined") return;
  const data = JSON.parse(island.textContent);
  const money = (value) => `${value.toFixed(2)} ${data.currency}`;
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.days,
      datasets: data.series.map((series) => ({ label: series.label, data: series.costs })),
    },
    options: {
      animation: false,
      // Wide on a desktop, taller than wide on a phone; no fixed height in the markup (no inline styles).
      aspectRatio: window.matchMedia("(min-width: 768px)").matches ? 3 : 1.2,
      scales: {
        x: { stacked: true },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: `Cost (${data.currency})` } },
      },
      plugins: {
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${money(item.parsed.y)}` } },
      },
    },
  });
})();
