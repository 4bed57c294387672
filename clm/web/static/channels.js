// The broadcast report's charts (what happened to the messages, and per day), drawn with the vendored
// Chart.js from the JSON the page embeds.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    Chart.defaults.font = { family: getComputedStyle(document.body).fontFamily, size: 12 };
    Chart.defaults.color = "#64748b";
    Chart.defaults.animation = false;
    Chart.defaults.locale = document.documentElement.lang || "vi";
    var grid = { color: "#eef2f7" };
    var colours = ["#0f766e", "#0369a1", "#7c3aed", "#a16207", "#c2410c", "#b91c1c"];
    var el;
    if ((el = document.getElementById("chart-funnel")) && data.funnel) {
      new Chart(el, {
        type: "bar",
        data: { labels: data.funnel.labels, datasets: [{ data: data.funnel.values, backgroundColor: colours, borderRadius: 3 }] },
        options: { indexAxis: "y", maintainAspectRatio: false, plugins: { legend: { display: false } },
          scales: { x: { beginAtZero: true, grid: grid, ticks: { precision: 0 } }, y: { grid: { display: false } } } }
      });
    }
    if ((el = document.getElementById("chart-daily")) && data.daily) {
      new Chart(el, {
        type: "bar",
        data: { labels: data.daily.labels, datasets: data.daily.series.map(function (s, i) {
          return { label: s.label, data: s.values, backgroundColor: colours[i], borderRadius: 3 };
        }) },
        options: { maintainAspectRatio: false, scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid: grid, ticks: { precision: 0 } } } }
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
