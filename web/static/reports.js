// Queue report charts, drawn with the vendored Chart.js from the data on the page.
// The tables below the charts show the same figures when JavaScript is off; so the
// charts stay hidden until they are drawn.
(function () {
  "use strict";

  if (typeof window.Chart === "undefined") {
    return;
  }

  // The chart data of a holder (its data-chart attribute), or null without rows.
  function chartData(holder) {
    if (!holder) {
      return null;
    }
    var data;
    try {
      data = JSON.parse(holder.getAttribute("data-chart") || "null");
    } catch (e) {
      return null;
    }
    return data && data.labels && data.labels.length ? data : null;
  }

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
  function percent(v) {
    return v + " %";
  }

  var holder = document.getElementById("report-charts");
  var data = chartData(holder);
  if (data) {
    holder.hidden = false;
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
          scales: { y: { min: 0, max: 100, ticks: { callback: percent } } },
        }),
      }),
    ];
    holder.setAttribute("data-drawn", "yes");
  }

  // Outcomes: conversion rate as bars (0-100 %, left), satisfaction as a line (1-5, right).
  var outcomes = document.getElementById("outcome-charts");
  var figures = chartData(outcomes);
  if (figures) {
    outcomes.hidden = false;
    window.KeeplineOutcomeCharts = [
      new window.Chart(document.getElementById("chart-outcomes"), {
        type: "bar",
        data: {
          labels: figures.labels,
          datasets: [
            {
              type: "line",
              label: "Satisfaction (1-5)",
              data: figures.csat,
              yAxisID: "csat",
              borderColor: accent,
              backgroundColor: accent,
              spanGaps: true,
              pointRadius: figures.labels.length > 60 ? 0 : 3,
            },
            {
              label: "Conversion rate %",
              data: figures.conversion,
              yAxisID: "rate",
              backgroundColor: up,
            },
          ],
        },
        options: Object.assign({}, common, {
          scales: {
            rate: { position: "left", min: 0, max: 100, ticks: { callback: percent } },
            csat: { position: "right", min: 1, max: 5, grid: { drawOnChartArea: false } },
          },
        }),
      }),
    ];
    outcomes.setAttribute("data-drawn", "yes");
  }
})();
