// The usage page: run seconds, hold seconds and jobs per period, stacked by instance.
(function () {
  "use strict";
  function draw() {
    var el = document.getElementById("usage-data");
    if (!el || typeof Plotly === "undefined") return;
    var d = JSON.parse(el.textContent);
    var charts = [
      ["usage-run", "run", "QPU seconds: runs"],
      ["usage-hold", "hold", "QPU seconds: sessions holding"],
      ["usage-jobs", "jobs", "jobs ended"],
    ];
    charts.forEach(function (c) {
      var traces = Object.keys(d.series).map(function (name) {
        return { type: "bar", name: name, x: d.periods, y: d.series[name][c[1]],
          hovertemplate: name + ": %{y}<extra>%{x}</extra>" };
      });
      Plotly.newPlot(c[0], traces, {
        title: { text: c[2] + " per " + d.by }, barmode: "stack", height: 300,
        margin: { t: 40, r: 10, b: 40, l: 60 }, legend: { orientation: "h" },
        xaxis: { type: "category" },
      }, { displaylogo: false, responsive: true });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
