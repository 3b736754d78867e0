// The what-if page: both futures of every backend as a timeline, on one shared time axis.
(function () {
  "use strict";
  // Okabe-Ito, as the dashboard's lanes.
  var LANE_COLOURS = { reservation: "#E69F00", session: "#0072B2", fair_share: "#009E73", mixed: "#999999" };
  var LANE_NAMES = { reservation: "reservation", session: "session", fair_share: "fair-share", mixed: "several lanes" };
  var SIDES = ["without", "with"];
  var ROWS = { without: "without the changes", with: "with the changes" };
  var ORDER = [ROWS.with, ROWS.without]; // bottom to top: "without" on top

  function hover(span) {
    var who = Object.keys(span.instances).map(function (i) { return i + " (" + span.instances[i] + ")"; });
    return span.jobs + " job" + (span.jobs > 1 ? "s" : "") + ", " + LANE_NAMES[span.lane] +
      (span.synthetic ? ", " + span.synthetic + " synthetic" : "") + "<br>" + who.join(", ");
  }

  function traces(backend) {
    var groups = {};
    SIDES.forEach(function (side) {
      backend[side].spans.forEach(function (span) {
        var hatched = span.synthetic * 2 > span.jobs;
        var key = span.lane + (hatched ? "/synthetic" : "");
        var g = (groups[key] = groups[key] || { lane: span.lane, hatched: hatched, y: [], base: [], x: [], text: [] });
        g.y.push(ROWS[side]);
        g.base.push(span.start);
        g.x.push(Math.max(span.ms, 1));
        g.text.push(hover(span));
      });
    });
    return Object.keys(groups).sort().map(function (key) {
      var g = groups[key];
      return {
        type: "bar", orientation: "h", y: g.y, base: g.base, x: g.x, hovertext: g.text, hoverinfo: "text",
        name: LANE_NAMES[g.lane] + (g.hatched ? " (synthetic)" : ""), legendgroup: g.lane,
        marker: { color: LANE_COLOURS[g.lane] || "#000000", pattern: { shape: g.hatched ? "/" : "" },
                  line: { width: 0 } },
      };
    });
  }

  function windows(backend) {
    var shapes = [], notes = [];
    SIDES.forEach(function (side) {
      var row = ORDER.indexOf(ROWS[side]);
      backend[side].windows.forEach(function (w) {
        shapes.push({
          type: "rect", xref: "x", yref: "y", x0: w.start, x1: w.end, y0: row - 0.48, y1: row + 0.48,
          fillcolor: LANE_COLOURS.reservation, opacity: 0.18, layer: "below",
          line: { color: LANE_COLOURS.reservation, width: w.exclusive ? 2 : 0, dash: "dash" },
        });
        notes.push({ x: w.start, y: row + 0.45, xref: "x", yref: "y", xanchor: "left", yanchor: "top",
                     showarrow: false, font: { size: 10 }, text: (w.exclusive ? "exclusive: " : "window: ") + w.instance });
      });
      if (backend[side].paused) {
        notes.push({ x: 0.5, y: row, xref: "paper", yref: "y", showarrow: false, text: "paused",
                     font: { size: 12, color: "#b42318" } });
      }
    });
    return { shapes: shapes, annotations: notes };
  }

  function draw() {
    var data = document.getElementById("whatif-data");
    if (!data || !window.Plotly) return;
    var timeline = JSON.parse(data.textContent);
    Object.keys(timeline.backends).forEach(function (name) {
      var el = document.getElementById("whatif-timeline-" + name);
      if (!el) return;
      var marks = windows(timeline.backends[name]);
      var layout = {
        title: { text: name, font: { size: 13 }, x: 0, xanchor: "left" },
        height: 230, margin: { l: 130, r: 10, t: 30, b: 40 }, barmode: "overlay", bargap: 0.25,
        xaxis: { type: "date", range: [timeline.start, timeline.end] },
        yaxis: { type: "category", categoryorder: "array", categoryarray: ORDER,
                 range: [-0.5, 1.5], autorange: false },
        legend: { orientation: "h", y: -0.32 }, showlegend: true,
        shapes: marks.shapes, annotations: marks.annotations,
      };
      Plotly.react(el, traces(timeline.backends[name]), layout, { displayModeBar: false, responsive: true });
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.target && evt.target.id === "whatif-results") draw();
  });
  // A refused run (the state changed under the stacked changes) shows its message in place.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "whatif-results" && evt.detail.xhr.status === 400) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });
})();
