// The overview's charts, drawn with the vendored Chart.js from the JSON the page embeds.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    var font = { family: getComputedStyle(document.body).fontFamily, size: 12 };
    Chart.defaults.font = font;
    Chart.defaults.color = "#64748b";
    Chart.defaults.animation = false;
    Chart.defaults.locale = document.documentElement.lang || "vi";  // 2.500.000 in Vietnamese
    var grid = { color: "#eef2f7" };

    new Chart(document.getElementById("chart-stages"), {
      type: "doughnut",
      data: { labels: data.stages.labels, datasets: [{ data: data.stages.values, backgroundColor: data.stages.colours, borderWidth: 2 }] },
      options: { maintainAspectRatio: false, cutout: "62%", plugins: { legend: { position: "right" } } }
    });
    new Chart(document.getElementById("chart-new"), {
      type: "bar",
      data: { labels: data.weeks, datasets: [{ label: data.new_customers.label, data: data.new_customers.values,
        backgroundColor: "#0f766e", borderRadius: 4, maxBarThickness: 36 }] },
      options: { maintainAspectRatio: false, plugins: { legend: { display: false } },
        scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid: grid, ticks: { precision: 0 } } } }
    });
    new Chart(document.getElementById("chart-revenue"), {
      type: "line",
      data: { labels: data.weeks, datasets: [{ label: data.revenue.label, data: data.revenue.values, borderColor: "#6d28d9",
        backgroundColor: "rgba(109, 40, 217, .12)", fill: true, cubicInterpolationMode: "monotone", pointRadius: 3 }] },
      options: { maintainAspectRatio: false, plugins: { legend: { display: false },
          tooltip: { callbacks: { label: function (ctx) { return data.revenue.formatted[ctx.dataIndex]; } } } },
        scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid: grid } } }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
