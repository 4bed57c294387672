// The analytics pages' charts (CLV distribution, model fit), drawn with the vendored Chart.js from the
// JSON the page embeds; each chart is drawn only when its canvas is on the page.
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
    var el;
    if ((el = document.getElementById("chart-clv")) && data.clv) {
      new Chart(el, {
        type: "bar",
        data: { labels: data.clv.labels, datasets: [{ data: data.clv.values, backgroundColor: "#0f766e", borderRadius: 3 }] },
        options: { maintainAspectRatio: false, plugins: { legend: { display: false } },
          scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid: grid, ticks: { precision: 0 } } } }
      });
    }
    if ((el = document.getElementById("chart-histogram")) && data.histogram) {
      var h = data.histogram;
      new Chart(el, {
        type: "bar",
        data: { labels: h.labels, datasets: [
          { label: h.actual_label, data: h.actual, backgroundColor: "#0f766e", borderRadius: 3 },
          { label: h.expected_label, data: h.expected, backgroundColor: "#a78bfa", borderRadius: 3 }] },
        options: { maintainAspectRatio: false, scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid: grid } } }
      });
    }
    if ((el = document.getElementById("chart-tracking")) && data.tracking) {
      var tr = data.tracking;
      new Chart(el, {
        type: "line",
        data: { labels: tr.labels, datasets: [
          { label: tr.actual_label, data: tr.actual, borderColor: "#0f766e", pointRadius: 0, borderWidth: 2 },
          { label: tr.expected_label, data: tr.expected, borderColor: "#7c3aed", borderDash: [6, 4], pointRadius: 0, borderWidth: 2 }] },
        options: { maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
          scales: { x: { title: { display: true, text: tr.x_label }, grid: { display: false },
                         ticks: { callback: function (v, i) { var w = tr.labels[i]; return tr.split !== null && Math.abs(w - tr.split) < 0.5 ? "| " + w : w; } } },
                    y: { beginAtZero: true, grid: grid } } }
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
