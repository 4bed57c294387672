// The sales pages: drag a deal card to another column of the board (posted with the CSRF header, the board
// comes back and is swapped in), copy a form's embed snippet, and draw the forecast's and the reports' charts.
(function () {
  "use strict";

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"]; } catch (e) { return ""; }
  }

  function move(board, id, stage, reason) {
    var body = new URLSearchParams({ stage: stage, owner: board.dataset.owner || "" });
    if (reason) body.set("reason", reason);
    board.classList.add("busy");
    return fetch("/sales/opportunities/" + id + "/stage", {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRF-Token": csrf(), "X-Requested-With": "fetch" }
    }).then(function (r) {
      if (r.redirected || !(r.headers.get("content-type") || "").startsWith("text/html")) { location.reload(); return; }
      return r.text().then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("board");
        if (next) { board.replaceWith(next); wire(next); } else { location.reload(); }
      });
    }).catch(function () { board.classList.remove("busy"); });
  }

  function wire(board) {
    var dragged = null;
    board.querySelectorAll(".kcard[draggable=true]").forEach(function (card) {
      card.addEventListener("dragstart", function (e) {
        dragged = card;
        card.classList.add("dragging");
        e.dataTransfer.effectAllowed = "move";
        e.dataTransfer.setData("text/plain", card.dataset.id);
      });
      card.addEventListener("dragend", function () { card.classList.remove("dragging"); dragged = null; });
    });
    board.querySelectorAll(".kcol").forEach(function (col) {
      col.addEventListener("dragover", function (e) { e.preventDefault(); col.classList.add("over"); });
      col.addEventListener("dragleave", function () { col.classList.remove("over"); });
      col.addEventListener("drop", function (e) {
        e.preventDefault();
        col.classList.remove("over");
        var id = e.dataTransfer.getData("text/plain") || (dragged && dragged.dataset.id);
        if (!id || (dragged && dragged.closest(".kcol") === col)) return;
        var reason = null;
        if (col.dataset.kind === "lost") {
          reason = window.prompt(board.dataset.lostPrompt || "Reason");
          if (!reason) return;
        }
        var card = board.querySelector("#deal-" + id);
        if (card) col.querySelector(".kcards").prepend(card);  // show it at once; the answer redraws the board
        move(board, id, col.dataset.stage, reason);
      });
    });
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copy);
        source.select();
        var done = function () { button.textContent = button.dataset.copied || "Copied"; };
        if (navigator.clipboard) navigator.clipboard.writeText(source.value).then(done, function () { document.execCommand("copy"); done(); });
        else { document.execCommand("copy"); done(); }
      });
    });
  }

  function forecastChart() {
    var source = document.getElementById("forecast-data");
    var canvas = document.getElementById("chart-forecast");
    if (!source || !canvas || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    Chart.defaults.animation = false;
    Chart.defaults.locale = document.documentElement.lang || "vi";
    new Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: [
        { label: data.names.weighted, data: data.weighted, backgroundColor: "#6d28d9", borderRadius: 4, stack: "open" },
        { label: data.names.rest, data: data.rest, backgroundColor: "#c4b5fd", borderRadius: 4, stack: "open" },
        { label: data.names.won, data: data.won, backgroundColor: "#0f766e", borderRadius: 4, stack: "won" }
      ] },
      options: { maintainAspectRatio: false, scales: { x: { stacked: true, grid: { display: false } },
        y: { stacked: true, beginAtZero: true } } }
    });
  }

  var PALETTE = ["#6d28d9", "#2563eb", "#0891b2", "#0f766e", "#16a34a", "#dc2626"];

  function bars(id, chart, options) {
    var canvas = document.getElementById(id);
    if (!canvas || !chart || !chart.labels.length) return;
    new Chart(canvas, {
      type: "bar",
      data: { labels: chart.labels, datasets: chart.series.map(function (s, i) {
        return { label: s.name, data: s.data, backgroundColor: PALETTE[i % PALETTE.length], borderRadius: 3 };
      }) },
      options: Object.assign({ maintainAspectRatio: false, scales: { x: { grid: { display: false } },
        y: { beginAtZero: true } } }, options || {})
    });
  }

  function reportCharts() {
    var source = document.getElementById("report-data");
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    Chart.defaults.animation = false;
    Chart.defaults.locale = document.documentElement.lang || "vi";
    var percent = { y: { beginAtZero: true, max: 1, ticks: { format: { style: "percent" } } } };
    bars("chart-source", data.source);
    bars("chart-campaign", data.campaign);
    bars("chart-stages", data.stages, { indexAxis: "y", plugins: { legend: { display: false } } });
    bars("chart-months", data.months);
    bars("chart-owners", data.owners);
    var scores = document.getElementById("chart-scores");
    if (scores && data.scores.labels.length) {
      new Chart(scores, {
        type: "line",
        data: { labels: data.scores.labels, datasets: data.scores.series.map(function (s, i) {
          return { label: s.name, data: s.data, borderColor: PALETTE[i * 3], backgroundColor: PALETTE[i * 3], tension: 0 };
        }) },
        options: { maintainAspectRatio: false, scales: Object.assign({ x: { grid: { display: false } } }, percent) }
      });
    }
    var calibration = document.getElementById("chart-calibration");
    if (calibration && data.calibration.points.length) {
      new Chart(calibration, {
        type: "scatter",
        data: { datasets: [
          { label: data.calibration.names.model, data: data.calibration.points, backgroundColor: PALETTE[0],
            borderColor: PALETTE[0], showLine: true, pointRadius: 5 },
          { label: data.calibration.names.ideal, data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], borderColor: "#94a3b8",
            borderDash: [6, 4], showLine: true, pointRadius: 0 }
        ] },
        options: { maintainAspectRatio: false, scales: {
          x: { min: 0, max: 1, ticks: { format: { style: "percent" } } },
          y: { min: 0, max: 1, ticks: { format: { style: "percent" } } } } }
      });
    }
  }

  function selectAll() {
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        document.querySelectorAll("input[name='" + box.dataset.selectAll + "']").forEach(function (b) { b.checked = box.checked; });
      });
    });
  }

  function start() {
    var board = document.getElementById("board");
    if (board) wire(board);
    copyButtons();
    forecastChart();
    reportCharts();
    selectAll();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
