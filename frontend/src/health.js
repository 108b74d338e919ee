// An executor's health history: latency over time, each point coloured by the probe's status (Chart.js).
import { Chart, LineController, LineElement, PointElement, LinearScale, CategoryScale, Tooltip, Legend } from "chart.js";

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Tooltip, Legend);
const COLOURS = { healthy: "#2b8a3e", degraded: "#e67700", unreachable: "#c92a2a", unknown: "#868e96" };
const source = document.getElementById("health-data");
const canvas = document.getElementById("health-chart");
if (source && canvas) {
  const probes = JSON.parse(source.textContent);
  const label = (at) => new Date(at).toLocaleTimeString();
  new Chart(canvas, {
    type: "line",
    data: {
      labels: probes.map((p) => label(p.at)),
      datasets: [{
        label: "latency (ms); unreachable probes at 0",
        data: probes.map((p) => p.latency_ms ?? 0),
        borderColor: "#3b5bdb",
        pointBackgroundColor: probes.map((p) => COLOURS[p.status] || COLOURS.unknown),
        pointRadius: 4,
        tension: 0.2,
      }],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } } },
      plugins: { tooltip: { callbacks: { afterLabel: (item) => `status: ${probes[item.dataIndex].status}` } } },
    },
  });
  canvas.dataset.ready = "true";
}
