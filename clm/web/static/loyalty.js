// The loyalty reports: points expiring per month, where the points went, members per tier over time and the
// revenue of members against everyone else, drawn with the vendored Chart.js from the page's JSON.
(function () {
  "use strict";
  var COLOURS = ["#94a3b8", "#0f766e", "#d97706", "#6d28d9", "#be123c", "#0369a1"];
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    Chart.defaults.animation = false;
    Chart.defaults.locale = document.documentElement.lang || "vi";
    var grid = { color: "#eef2f7" };
    var plain = { maintainAspectRatio: false, plugins: { legend: { display: false } },
      scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid: grid, ticks: { precision: 0 } } } };
    new Chart(document.getElementById("chart-expiring"), {
      type: "bar",
      data: { labels: data.expiring.labels, datasets: [{ label: data.expiring.label, data: data.expiring.values,
        backgroundColor: "#d97706", borderRadius: 4, maxBarThickness: 36 }] },
      options: plain
    });
    new Chart(document.getElementById("chart-outstanding"), {
      type: "doughnut",
      data: { labels: data.outstanding.labels, datasets: [{ data: data.outstanding.values,
        backgroundColor: ["#0f766e", "#5eead4", "#6d28d9", "#94a3b8"], borderWidth: 2 }] },
      options: { maintainAspectRatio: false, cutout: "60%", plugins: { legend: { position: "right" } } }
    });
    new Chart(document.getElementById("chart-tiers"), {
      type: "line",
      data: { labels: data.tiers.labels, datasets: data.tiers.series.map(function (s, i) {
        return { label: s.label, data: s.values, borderColor: COLOURS[i % COLOURS.length],
          backgroundColor: COLOURS[i % COLOURS.length], fill: false, pointRadius: 2, stepped: true };
      }) },
      options: { maintainAspectRatio: false, plugins: { legend: { position: "bottom" } },
        scales: { x: { grid: { display: false } }, y: { beginAtZero: true, stacked: false, grid: grid, ticks: { precision: 0 } } } }
    });
    var rev = data.revenue;
    new Chart(document.getElementById("chart-revenue"), {
      type: "bar",
      data: { labels: rev.labels, datasets: [
        { label: rev.member_label, data: rev.members, backgroundColor: "#0f766e", stack: "r" },
        { label: rev.other_label, data: rev.others, backgroundColor: "#cbd5e1", stack: "r" }] },
      options: { maintainAspectRatio: false, plugins: { legend: { position: "bottom" },
          tooltip: { callbacks: { label: function (ctx) {
            var list = ctx.datasetIndex === 0 ? rev.formatted_members : rev.formatted_others;
            return ctx.dataset.label + ": " + list[ctx.dataIndex]; } } } },
        scales: { x: { stacked: true, grid: { display: false } }, y: { stacked: true, beginAtZero: true, grid: grid } } }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
