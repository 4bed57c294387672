// A segment's page: its size over the last 30 days, drawn with the vendored Chart.js from the page's JSON.
// The builder: a picked field, operator or group mode re-renders the builder (the form's change trigger);
// a typed value only refreshes the count (its input trigger), so its change event stops before the form.
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("#builder input[type=text]")) e.stopPropagation();
  }, true);
  function draw() {
    var source = document.getElementById("chart-data");
    var el = document.getElementById("chart-size");
    if (!source || !el || !window.Chart) return;
    var data = JSON.parse(source.textContent).size;
    Chart.defaults.animation = false;
    new Chart(el, {
      type: "line",
      data: { labels: data.labels, datasets: [{ data: data.values, borderColor: "#0f766e", backgroundColor: "#ccfbf1",
        fill: true, pointRadius: 0, borderWidth: 2, stepped: true }] },
      options: { maintainAspectRatio: false, plugins: { legend: { display: false } },
        scales: { x: { grid: { display: false } }, y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
