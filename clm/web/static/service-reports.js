// The service desk's reports: volume by channel and by hour of the day, SLA attainment and each agent's load,
// drawn with the vendored Chart.js from the page's JSON.
(function () {
  "use strict";
  var COLOURS = ["#0f766e", "#6d28d9", "#d97706", "#0369a1", "#be123c", "#65a30d", "#94a3b8", "#a21caf"];
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    Chart.defaults.animation = false;
    Chart.defaults.locale = document.documentElement.lang || "vi";
    var grid = { color: "#eef2f7" };
    new Chart(document.getElementById("chart-channels"), {
      type: "doughnut",
      data: { labels: data.channels.labels, datasets: [{ data: data.channels.values, backgroundColor: COLOURS, borderWidth: 2 }] },
      options: { maintainAspectRatio: false, cutout: "60%", plugins: { legend: { position: "right" } } }
    });
    new Chart(document.getElementById("chart-hours"), {
      type: "bar",
      data: { labels: data.hours.labels, datasets: data.hours.series.map(function (s, i) {
        return { label: s.label, data: s.values, backgroundColor: COLOURS[i % COLOURS.length], stack: "h" };
      }) },
      options: { maintainAspectRatio: false, plugins: { legend: { position: "bottom" } },
        scales: { x: { stacked: true, grid: { display: false } }, y: { stacked: true, beginAtZero: true, grid: grid, ticks: { precision: 0 } } } }
    });
    new Chart(document.getElementById("chart-sla"), {
      type: "bar",
      data: { labels: data.sla.labels, datasets: [
        { label: data.sla.met_label, data: data.sla.met, backgroundColor: "#16a34a", stack: "s" },
        { label: data.sla.breached_label, data: data.sla.breached, backgroundColor: "#dc2626", stack: "s" }] },
      options: { maintainAspectRatio: false, indexAxis: "y", plugins: { legend: { position: "bottom" } },
        scales: { x: { stacked: true, beginAtZero: true, grid: grid, ticks: { precision: 0 } }, y: { stacked: true, grid: { display: false } } } }
    });
    new Chart(document.getElementById("chart-load"), {
      type: "bar",
      data: { labels: data.load.labels, datasets: [
        { label: data.load.open_label, data: data.load.open, backgroundColor: "#0f766e" },
        { label: data.load.capacity_label, data: data.load.capacity, backgroundColor: "#cbd5e1" }] },
      options: { maintainAspectRatio: false, plugins: { legend: { position: "bottom" } },
        scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid: grid, ticks: { precision: 0 } } } }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
