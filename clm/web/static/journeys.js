// Journeys. The builder: a picked type, channel or option re-renders the builder (the form's change trigger);
// a typed text is only sent with the next change, Validate or Save, so typing never loses focus.
// A journey's page: entries and conversions per day and each A/B split's conversion rates (vendored Chart.js).
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches && t.matches("#journey-builder input[type=text], #journey-builder input[type=time]")) e.stopPropagation();
  }, true);
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    Chart.defaults.animation = false;
    Chart.defaults.locale = document.documentElement.lang || "vi";
    var daily = document.getElementById("chart-daily");
    if (daily) {
      new Chart(daily, {
        type: "bar",
        data: { labels: data.daily.labels, datasets: [
          { label: daily.dataset.entered || "entered", data: data.daily.entered, backgroundColor: "#0f766e", borderRadius: 3 },
          { label: daily.dataset.converted || "converted", data: data.daily.converted, backgroundColor: "#a16207", borderRadius: 3 }] },
        options: { maintainAspectRatio: false, plugins: { legend: { position: "bottom" } },
          scales: { x: { grid: { display: false } }, y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    }
    document.querySelectorAll("canvas[data-split]").forEach(function (el) {
      var split = data.splits[Number(el.dataset.split)];
      new Chart(el, {
        type: "bar",
        data: { labels: split.labels, datasets: [{ data: split.rates, backgroundColor: "#0369a1", borderRadius: 4, maxBarThickness: 48 }] },
        options: { maintainAspectRatio: false, plugins: { legend: { display: false },
            tooltip: { callbacks: { label: function (ctx) { return ctx.parsed.y + "%"; } } } },
          scales: { x: { grid: { display: false } }, y: { beginAtZero: true, ticks: { callback: function (v) { return v + "%"; } } } } }
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
