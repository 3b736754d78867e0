// qdash live pages: local times, countdowns, Plotly charts fed over the page's one websocket.
(function () {
  "use strict";
  // Okabe-Ito, a colour-blind-safe palette.
  var LANE_COLOURS = { reservation: "#E69F00", session: "#0072B2", fair_share: "#009E73" };
  var LANE_NAMES = { reservation: "reservation", session: "session", fair_share: "fair-share" };
  var STATE_COLOURS = { open: "#56B4E9", active: "#0072B2", inactive: "#CC79A7" };
  var LANES = ["reservation", "session", "fair_share"];
  var maxPoints = 200;
  var span = 1800; // seconds of history on the dashboard (the server's TIMELINE_SPAN)
  var binSeconds = 60; // the queue-flow bars' bin (the server's FLOW_BIN)

  function localTimes(root) {
    root.querySelectorAll("time.local[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      var sameDay = d.toDateString() === new Date().toDateString();
      el.textContent = sameDay ? d.toLocaleTimeString() : d.toLocaleString();
      el.title = d.toString();
    });
  }

  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = Math.round((new Date(el.dataset.deadline) - now) / 1000);
      if (left <= 0) { el.textContent = "due"; el.classList.add("due"); return; }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
    });
  }

  var layoutBase = {
    margin: { l: 40, r: 10, t: 30, b: 30 }, height: 220,
    legend: { orientation: "h", y: -0.25 }, xaxis: { type: "date" },
  };

  // Queue flow, one chart per backend. Top: queued jobs per lane (stacked steps).
  // Bottom: per minute, jobs entering each lane (up) and starting from it (down, hatched).
  // Traces 0-2: depth; 3-5: entered; 6-8: started (LANES order).
  function flowTraces(flow) {
    var depth = flow.depth, bins = flow.flow.bins.map(function (t) { return new Date(t); });
    var traces = LANES.map(function (lane) {
      return {
        x: depth.x.map(function (t) { return new Date(t); }), y: depth[lane], yaxis: "y",
        name: LANE_NAMES[lane], legendgroup: lane, type: "scatter", mode: "lines",
        line: { shape: "hv", color: LANE_COLOURS[lane] }, stackgroup: "depth",
        hovertemplate: "%{y} queued (" + LANE_NAMES[lane] + ")<extra></extra>",
      };
    });
    [["entered", 1, ""], ["started", -1, "/"]].forEach(function (kind) {
      LANES.forEach(function (lane) {
        traces.push({
          x: bins.slice(), y: flow.flow[kind[0]][lane].map(function (n) { return kind[1] * n; }),
          yaxis: "y2", type: "bar", name: LANE_NAMES[lane] + " " + kind[0], legendgroup: lane,
          showlegend: false, marker: { color: LANE_COLOURS[lane], pattern: { shape: kind[2] } },
          customdata: flow.flow[kind[0]][lane],
          hovertemplate: "%{customdata} " + kind[0] + " (" + LANE_NAMES[lane] + ")<extra></extra>",
        });
      });
    });
    return traces;
  }

  function drawFlow(charts) {
    Object.keys(charts.flow || {}).forEach(function (name) {
      var el = document.getElementById("flow-" + name);
      if (!el || !window.Plotly) return;
      var layout = Object.assign({}, layoutBase, {
        title: { text: name, font: { size: 13 } }, height: 300, barmode: "relative", bargap: 0.1,
        yaxis: { domain: [0.45, 1], rangemode: "tozero", title: { text: "queued" } },
        yaxis2: { domain: [0, 0.33], title: { text: "in ↑ out ↓" }, zeroline: true },
        xaxis: { type: "date", anchor: "y2" },
        legend: { orientation: "h", y: -0.18 },
      });
      Plotly.react(el, flowTraces(charts.flow[name]), layout, { displayModeBar: false, responsive: true });
    });
  }

  function onDashboard() {
    var main = document.querySelector("main");
    return main && main.dataset.page === "dashboard";
  }

  // A batch's row says so; jobs carry no mode and take their session's row.
  var batchSessions = {};
  function timelineRow(item) {
    return item.backend + " · " + (batchSessions[item.session] ? "batch " : "") + item.session.slice(0, 8);
  }

  // Session activity (Gantt): a row per session, its state spans as bars, its jobs and its
  // close as marks, reservations as background bands.
  function drawTimeline(timeline) {
    var el = document.getElementById("session-timeline");
    if (!el || !window.Plotly || !timeline) return;
    var byState = {};
    batchSessions = {};
    (timeline.spans || []).concat(timeline.closes || []).forEach(function (s) {
      if (s.mode === "batch") batchSessions[s.session] = true;
    });
    (timeline.spans || []).forEach(function (s) {
      var start = new Date(s.start), end = new Date(s.end);
      (byState[s.state] = byState[s.state] || { y: [], base: [], x: [], text: [], pattern: [] });
      byState[s.state].y.push(timelineRow(s));
      byState[s.state].base.push(start);
      byState[s.state].x.push(Math.max(end - start, 1000));
      byState[s.state].text.push((s.mode === "batch" ? "batch " : "session ") + s.session + " " + s.state + ", " + start.toLocaleTimeString() + " – " + end.toLocaleTimeString());
      byState[s.state].pattern.push(s.mode === "batch" ? "/" : "");  // batches hatched
    });
    var traces = Object.keys(byState).map(function (state) {
      var d = byState[state];
      return { type: "bar", orientation: "h", name: state, y: d.y, base: d.base, x: d.x, hovertext: d.text,
               hoverinfo: "text", marker: { color: STATE_COLOURS[state] || "#000000", pattern: { shape: d.pattern, fgcolor: "#ffffff" } } };
    });
    var jobs = timeline.jobs || [];
    if (jobs.length) {
      traces.push({
        type: "scatter", mode: "markers", name: "job", y: jobs.map(timelineRow),
        x: jobs.map(function (j) { return new Date(j.at); }),
        hovertext: jobs.map(function (j) {
          return "job " + j.job + ": " + j.status + (j.started ? ", started " : ", submitted ") + new Date(j.at).toLocaleTimeString();
        }),
        hoverinfo: "text",
        marker: { symbol: jobs.map(function (j) { return j.started ? "diamond" : "diamond-open"; }), size: 9,
                  color: "#000000", line: { color: "#ffffff", width: 1 } },
      });
    }
    var closes = timeline.closes || [];
    if (closes.length) {
      traces.push({
        type: "scatter", mode: "markers", name: "closed", y: closes.map(timelineRow),
        x: closes.map(function (c) { return new Date(c.at); }),
        hovertext: closes.map(function (c) { return c.session + " closed " + new Date(c.at).toLocaleTimeString(); }),
        hoverinfo: "text", marker: { symbol: "x-thin-open", size: 12, color: "#D55E00", line: { width: 2, color: "#D55E00" } },
      });
    }
    var shapes = (timeline.reservations || []).map(function (r) {
      return { type: "rect", xref: "x", yref: "paper", x0: new Date(r.start), x1: new Date(r.end), y0: 0, y1: 1,
               fillcolor: LANE_COLOURS.reservation, opacity: 0.15, line: { width: 0 }, layer: "below" };
    });
    var annotations = (timeline.reservations || []).map(function (r) {
      return { x: new Date(r.start), y: 1, xref: "x", yref: "paper", text: "reservation " + r.instance + " on " + r.backend,
               showarrow: false, xanchor: "left", yanchor: "top", font: { size: 10 } };
    });
    var rows = new Set(traces.flatMap(function (t) { return t.y; })).size;
    var layout = Object.assign({}, layoutBase, {
      barmode: "overlay", height: Math.max(200, 90 + rows * 24), shapes: shapes, annotations: annotations,
      margin: { l: 40, r: 10, t: 40, b: 40 },
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom" },
      // The recent past and as long ahead; reservations further out are clipped.
      xaxis: onDashboard()
        ? { type: "date", range: [new Date(Date.now() - span * 1e3), new Date(Date.now() + span * 1e3)] }
        : { type: "date" },
      yaxis: { automargin: true, type: "category" },
    });
    Plotly.react(el, traces, layout, { displayModeBar: false, responsive: true });
  }

  function drawResult(el) {
    var data = document.getElementById("result-data");
    if (!el || !data || !window.Plotly || data.textContent === el.dataset.drawn) return;
    el.dataset.drawn = data.textContent;
    if (el.parentElement) el.parentElement.hidden = false;
    var r = JSON.parse(data.textContent);
    var traces, layout;
    if (r.kind === "estimator") {
      traces = r.pubs.map(function (p) {
        return { type: "scatter", mode: "markers", name: "PUB " + p.pub, x: p.evs.map(function (_, i) { return i; }), y: p.evs,
                 error_y: { type: "data", array: p.stds, visible: true } };
      });
      layout = { xaxis: { title: { text: "observable" }, dtick: 1 }, yaxis: { title: { text: "expectation value" } } };
    } else {
      traces = r.pubs.map(function (p) {
        return { type: "bar", name: "PUB " + p.pub + " · " + p.register, x: p.x, y: p.y };
      });
      layout = { xaxis: { title: { text: "bitstring" }, type: "category" }, yaxis: { title: { text: "counts" } }, barmode: "group" };
    }
    layout = Object.assign({ margin: { l: 50, r: 10, t: 20, b: 50 }, height: 320,
                             colorway: ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"] }, layout);
    Plotly.react(el, traces, layout, { displayModeBar: false, responsive: true });
  }

  function extendFlow(points) {
    Object.keys(points).forEach(function (name) {
      var el = document.getElementById("flow-" + name);
      if (!el || !el.data || el.data.length < 9) return;
      var p = points[name], at = new Date(p.at);
      Plotly.extendTraces(el, { x: LANES.map(function () { return [at]; }), y: LANES.map(function (l) { return [p[l]]; }) },
                          [0, 1, 2], maxPoints);
      // The current minute's bars: update the last bin, or open a new one (keeping span / bin bins).
      var bin = new Date(p.flow.bin), keep = Math.round(span / binSeconds) + 1, xs = [], ys = [], custom = [];
      [["entered", 1], ["started", -1]].forEach(function (kind, k) {
        LANES.forEach(function (lane, l) {
          var trace = el.data[3 + 3 * k + l], x = trace.x.slice(), n = p.flow[kind[0]][lane];
          var y = Array.from(trace.y), c = Array.from(trace.customdata || y);
          var last = x.length ? new Date(x[x.length - 1]).getTime() : NaN;
          if (last === bin.getTime()) { y[y.length - 1] = kind[1] * n; c[c.length - 1] = n; }
          else if (!(last > bin.getTime())) { x.push(bin); y.push(kind[1] * n); c.push(n); }
          xs.push(x.slice(-keep)); ys.push(y.slice(-keep)); custom.push(c.slice(-keep));
        });
      });
      Plotly.restyle(el, { x: xs, y: ys, customdata: custom }, [3, 4, 5, 6, 7, 8]);
    });
  }

  function onJson(message) {
    if (message.type === "charts") {
      maxPoints = message.maxPoints || maxPoints;
      span = message.span || span;
      binSeconds = message.bin || binSeconds;
      drawFlow(message);
      drawTimeline(message.timeline);
    } else if (message.type === "depth") {
      extendFlow(message.points);
    } else if (message.type === "timeline") {
      drawTimeline(message.timeline);
    }
  }

  function setLive(on) {
    var el = document.getElementById("live-status");
    if (el) { el.classList.toggle("on", on); el.title = on ? "live" : "reconnecting…"; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    tickCountdowns();
    setInterval(tickCountdowns, 1000);
    var charts = document.getElementById("chart-data");
    if (charts) {
      var c = JSON.parse(charts.textContent);
      maxPoints = c.maxPoints || maxPoints;
      span = c.span || span;
      binSeconds = c.bin || binSeconds;
      drawFlow(c);
      drawTimeline(c.timeline);
    }
    var timeline = document.getElementById("timeline-data");
    if (timeline) drawTimeline(JSON.parse(timeline.textContent));
    drawResult(document.getElementById("result-chart"));
  });

  // JSON messages feed the charts; HTML messages are fragments the ws extension swaps by id.
  document.addEventListener("htmx:wsBeforeMessage", function (evt) {
    var text = evt.detail.message;
    if (typeof text === "string" && text.charAt(0) === "{") {
      evt.preventDefault();
      onJson(JSON.parse(text));
    }
  });
  // A page that polls instead (the cluster page): the dot follows its last poll.
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (evt.detail.elt && evt.detail.elt.hasAttribute("data-poll")) setLive(evt.detail.successful);
  });
  // Copy buttons of code snippets (the account page's notebook snippet).
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("button[data-copy]");
    var code = button && document.getElementById(button.dataset.copy);
    if (!code || !navigator.clipboard) return;
    navigator.clipboard.writeText(code.textContent).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    });
  });
  document.addEventListener("htmx:wsOpen", function () { setLive(true); });
  document.addEventListener("htmx:wsClose", function () { setLive(false); });
  document.addEventListener("htmx:wsAfterMessage", function () {
    localTimes(document);
    tickCountdowns();
    drawResult(document.getElementById("result-chart"));  // a job that just completed
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    localTimes(evt.target);
    var timeline = document.getElementById("timeline-data");
    if (timeline && evt.target.id === "session-jobs") drawTimeline(JSON.parse(timeline.textContent));
  });
  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    if (evt.target && evt.target.id === "session-jobs") {
      var timeline = document.getElementById("timeline-data");
      if (timeline) drawTimeline(JSON.parse(timeline.textContent));
    }
  });
})();
