// Queue report charts, drawn with the vendored Chart.js from the data on the page.
// The table below the charts shows the same figures when JavaScript is off; so the
// charts stay hidden until they are drawn.
(function () {
  "use strict";

  var holder = document.getElementById("report-charts");
  if (!holder || typeof window.Chart === "undefined") {
    return;
  }
  var data;
  try {
    data = JSON.parse(holder.getAttribute("data-chart") || "null");
  } catch (e) {
    return;
  }
  if (!data || !data.labels || !data.labels.length) {
    return;
  }
  holder.hidden = false;

  var style = getComputedStyle(document.documentElement);
  function colour(name, fallback) {
    return (style.getPropertyValue(name) || "").trim() || fallback;
  }
  var accent = colour("--accent", "#1f6feb");
  var up = colour("--up", "#1a7f37");
  var down = colour("--down", "#b42318");
  var muted = colour("--muted", "#5b6673");

  var common = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom" } },
  };

  window.KeeplineCharts = [
    new window.Chart(document.getElementById("chart-calls"), {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Offered", data: data.offered, backgroundColor: muted },
          { label: "Answered", data: data.answered, backgroundColor: up },
          { label: "Abandoned", data: data.abandoned, backgroundColor: down },
        ],
      },
      options: Object.assign({}, common, {
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      }),
    }),
    new window.Chart(document.getElementById("chart-sl"), {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [
          {
            label: "Service level %",
            data: data.service_level,
            borderColor: accent,
            backgroundColor: accent,
            spanGaps: true,
            pointRadius: data.labels.length > 60 ? 0 : 3,
          },
        ],
      },
      options: Object.assign({}, common, {
        scales: { y: { min: 0, max: 100, ticks: { callback: function (v) { return v + " %"; } } } },
      }),
    }),
  ];
  holder.setAttribute("data-drawn", "yes");
})();
