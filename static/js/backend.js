// A backend's page: its coupling map, qubits coloured by the chosen property, couplers by error.
(function () {
  "use strict";
  var METRICS = {
    readout_error: { title: "readout error", format: ".2e", scale: "Viridis", reverse: false },
    t1: { title: "T1 (µs)", format: ".0f", scale: "Viridis", reverse: true },
    t2: { title: "T2 (µs)", format: ".0f", scale: "Viridis", reverse: true },
  };
  var EDGE_SCALE = [[0, "#1a9850"], [0.5, "#fee08b"], [1, "#d73027"]];

  function data() {
    var el = document.getElementById("coupling-data");
    return el ? JSON.parse(el.textContent) : null;
  }

  function colourAt(value, low, high) {
    if (value === null || high <= low) return "#999999";
    var t = Math.min(1, Math.max(0, (value - low) / (high - low)));
    var a = t < 0.5 ? EDGE_SCALE[0][1] : EDGE_SCALE[1][1], b = t < 0.5 ? EDGE_SCALE[1][1] : EDGE_SCALE[2][1];
    var u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    function ch(hex, i) { return parseInt(hex.substr(1 + 2 * i, 2), 16); }
    var rgb = [0, 1, 2].map(function (i) { return Math.round(ch(a, i) + (ch(b, i) - ch(a, i)) * u); });
    return "rgb(" + rgb.join(",") + ")";
  }

  function range(values) {
    var present = values.filter(function (v) { return v !== null && isFinite(v); }).sort(function (a, b) { return a - b; });
    if (!present.length) return [0, 0];
    // The 95th percentile caps the scale: one broken coupler does not wash out the rest.
    return [present[0], present[Math.floor(0.95 * (present.length - 1))]];
  }

  function traces(d, metric) {
    var m = METRICS[metric];
    var errors = d.edges.map(function (e) { return e.error; });
    var span = range(errors);
    var out = d.edges.map(function (e) {
      return {
        x: [d.x[e.a], d.x[e.b]], y: [d.y[e.a], d.y[e.b]], mode: "lines", type: "scatter",
        line: { color: colourAt(e.error, span[0], span[1]), width: 5 }, showlegend: false,
        hoverinfo: "text", text: e.labels.join(", ") + ": error " + (e.error === null ? "—" : e.error.toExponential(2)),
      };
    });
    // Midpoints carry the couplers' colour bar and their hover text.
    out.push({
      x: d.edges.map(function (e) { return (d.x[e.a] + d.x[e.b]) / 2; }),
      y: d.edges.map(function (e) { return (d.y[e.a] + d.y[e.b]) / 2; }),
      mode: "markers", type: "scatter", showlegend: false, name: "couplers",
      marker: { size: 6, opacity: 0, color: errors.map(function (v) { return v === null ? span[0] : v; }),
        cmin: span[0], cmax: span[1], colorscale: EDGE_SCALE,
        colorbar: { title: { text: "2-qubit error" }, x: 1.0, len: 0.45, y: 0.25, tickformat: ".1e" } },
      text: d.edges.map(function (e) { return e.labels.join(", ") + ": error " + (e.error === null ? "—" : e.error.toExponential(2)); }),
      hoverinfo: "text",
    });
    var values = d[metric];
    var qspan = range(values);
    out.push({
      x: d.x, y: d.y, mode: "markers+text", type: "scatter", name: "qubits", showlegend: false,
      text: d.x.map(function (_, i) { return String(i); }), textfont: { size: 9, color: "#ffffff" },
      marker: { size: 17, color: values.map(function (v) { return v === null ? qspan[0] : v; }),
        cmin: qspan[0], cmax: qspan[1], colorscale: m.scale, reversescale: m.reverse,
        line: { width: 1, color: "#333" },
        colorbar: { title: { text: m.title }, x: 1.0, len: 0.45, y: 0.78, tickformat: m.format } },
      customdata: values.map(function (v) { return v === null ? "—" : v; }),
      hovertemplate: "qubit %{text}<br>" + m.title + ": %{customdata:" + m.format + "}<extra></extra>",
    });
    return out;
  }

  function draw() {
    var el = document.getElementById("coupling-map"), d = data();
    if (!el || !d || !window.Plotly) return;
    var metric = document.getElementById("qubit-metric").value;
    var layout = {
      margin: { l: 10, r: 10, t: 10, b: 10 }, height: 560, hovermode: "closest",
      xaxis: { visible: false }, yaxis: { visible: false, scaleanchor: "x" },
      plot_bgcolor: "#ffffff",
    };
    Plotly.react(el, traces(d, metric), layout, { displayModeBar: false, responsive: true });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw();
    var select = document.getElementById("qubit-metric");
    if (select) select.addEventListener("change", draw);
  });
})();
