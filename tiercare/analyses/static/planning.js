/* Planning pages: progress polling, the travel-time surface and coverage chart (Plotly, served
   locally), and small form helpers. Data come from JSON blocks written by the server. */
(function () {
  "use strict";

  var FONT = { family: "system-ui, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif" };
  // One colour per band: within the first threshold … beyond the last one.
  var BANDS = ["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027", "#a50026"];

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  /* ------------------------------------------------------------------ progress of a run */
  function progress() {
    var box = document.getElementById("run-progress");
    if (!box) { return; }
    var steps = JSON.parse(box.getAttribute("data-steps") || "{}");
    var bar = box.querySelector(".bar");
    var pct = box.querySelector(".pct");
    var message = box.querySelector(".message");
    var elapsed = box.querySelector(".elapsed");
    var started = Date.now();
    var show = function (text) { message.textContent = steps[text] || text; };
    show(message.textContent);
    function poll() {
      fetch("/api/v1/analyses/" + box.getAttribute("data-run-id") + "?result=false",
            { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (run) {
          var share = Math.round((run.progress || 0) * 100);
          bar.style.width = share + "%";
          bar.parentNode.setAttribute("aria-valuenow", String(share));
          pct.textContent = share + " %";
          show(run.message || run.status);
          elapsed.textContent = Math.round((Date.now() - started) / 1000) + " s";
          if (run.status === "done" || run.status === "failed") {
            window.location.reload();
          } else {
            window.setTimeout(poll, 700);
          }
        })
        .catch(function () { window.setTimeout(poll, 2500); });
    }
    poll();
  }

  /* ------------------------------------------------------------------ travel-time surface */
  function colourScale(thresholds, zmax) {
    var stops = [];
    var edges = [0].concat(thresholds.filter(function (t) { return t < zmax; })).concat([zmax]);
    for (var i = 0; i < edges.length - 1; i++) {
      var colour = BANDS[Math.min(i, BANDS.length - 1)];
      stops.push([edges[i] / zmax, colour], [edges[i + 1] / zmax, colour]);
    }
    return stops;
  }

  function surface() {
    var holder = document.getElementById("surface-map");
    var s = data("surface-data");
    if (!holder || !s || typeof Plotly === "undefined") { return; }
    var last = s.thresholds[s.thresholds.length - 1];
    var zmax = last * 1.5;
    var midLat = (s.lat[0] + s.lat[s.lat.length - 1]) / 2;
    var traces = [
      {
        type: "heatmap", x: s.lon, y: s.lat, z: s.minutes, zmin: 0, zmax: zmax,
        colorscale: colourScale(s.thresholds, zmax), zsmooth: false, hoverongaps: false,
        colorbar: { title: { text: s.labels.minutes }, tickvals: [0].concat(s.thresholds),
                    ticksuffix: "", len: 0.8 },
        hovertemplate: "%{z:.0f} " + s.labels.minutes + "<br>%{x:.3f}, %{y:.3f}<extra></extra>",
        name: s.labels.minutes
      },
      {
        type: "scatter", mode: "lines", x: s.lines.lon, y: s.lines.lat, name: s.labels.outline,
        line: { color: "rgba(30,41,59,0.65)", width: 1 }, hoverinfo: "skip", connectgaps: false
      },
      {
        type: "scatter", mode: "markers", x: s.sites.lon, y: s.sites.lat, text: s.sites.text,
        name: s.labels.sites, hovertemplate: "%{text}<extra></extra>",
        marker: { symbol: "square", size: 11, color: "#1e3a8a", line: { color: "#fff", width: 1.5 } }
      }
    ];
    Plotly.newPlot(holder, traces, {
      margin: { l: 50, r: 10, t: 10, b: 40 }, autosize: true,
      xaxis: { title: { text: "lon" }, showgrid: false, zeroline: false },
      yaxis: { title: { text: "lat" }, showgrid: false, zeroline: false,
               scaleanchor: "x", scaleratio: 1 / Math.cos(midLat * Math.PI / 180) },
      legend: { orientation: "h", x: 0, y: -0.08 },
      font: FONT, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#f8fbfd"
    }, { displaylogo: false, responsive: true });
  }

  /* ------------------------------------------------------------------ coverage by township */
  function coverageChart() {
    var holder = document.getElementById("coverage-chart");
    var c = data("coverage-data");
    if (!holder || !c || typeof Plotly === "undefined") { return; }
    var traces = c.series.map(function (s, i) {
      return { type: "bar", name: s.name, x: c.townships, y: s.values,
               marker: { color: BANDS[Math.min(i, BANDS.length - 1)] },
               hovertemplate: "%{x}: %{y:.1f} %<extra>" + s.name + "</extra>" };
    });
    Plotly.newPlot(holder, traces, {
      barmode: "group", height: c.height, margin: { l: 50, r: 10, t: 10, b: 90 },
      yaxis: { title: { text: c.yaxis }, range: [0, 105], ticksuffix: " %" },
      legend: { orientation: "h", x: 0, y: 1.12 }, font: FONT,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"
    }, { displaylogo: false, responsive: true });
  }

  /* ------------------------------------------------------------------ forms */
  function forms() {
    // the road network stored for the chosen county is picked when there is one
    document.querySelectorAll("select[name=division_code]").forEach(function (county) {
      var roads = county.form && county.form.querySelector("select[name=road_network]");
      if (!roads) { return; }
      county.addEventListener("change", function () {
        var wanted = county.selectedOptions[0] && county.selectedOptions[0].getAttribute("data-network");
        if (wanted) { roads.value = wanted; }
      });
    });
    // optimisation: fields a model does not use are dimmed and disabled
    var optimise = document.getElementById("optimise-form");
    if (optimise) {
      var update = function () {
        var checked = optimise.querySelector("input[name=model]:checked");
        var model = checked ? checked.value : "mclp";
        optimise.querySelectorAll("[data-for-models]").forEach(function (label) {
          var on = label.getAttribute("data-for-models").split(" ").indexOf(model) >= 0;
          label.classList.toggle("off", !on);
          label.querySelectorAll("input, select").forEach(function (f) { f.disabled = !on; });
        });
      };
      var candidates = optimise.querySelector("select[name=candidates]");
      var showFiles = function () {
        optimise.querySelectorAll("[data-for-candidates]").forEach(function (label) {
          var on = candidates && label.getAttribute("data-for-candidates") === candidates.value;
          label.hidden = !on;
          label.querySelectorAll("input").forEach(function (f) { f.disabled = !on; });
        });
      };
      optimise.addEventListener("change", function () { update(); showFiles(); });
      update();
      showFiles();
    }
    // a form that starts a computation says so and cannot be sent twice
    document.querySelectorAll("form[data-busy]").forEach(function (form) {
      form.addEventListener("submit", function () {
        var button = form.querySelector("button[type=submit]");
        if (button) {
          window.setTimeout(function () {
            button.disabled = true;
            button.textContent = form.getAttribute("data-busy");
          }, 0);
        }
      });
    });
    // comparison: at most N scenarios
    document.querySelectorAll("form[data-max]").forEach(function (form) {
      var limit = parseInt(form.getAttribute("data-max"), 10);
      var boxes = form.querySelectorAll("input[name=names]");
      var update = function () {
        var count = 0;
        boxes.forEach(function (b) { if (b.checked) { count += 1; } });
        boxes.forEach(function (b) { b.disabled = !b.checked && count >= limit; });
      };
      boxes.forEach(function (b) { b.addEventListener("change", update); });
      update();
    });
  }

  function start() {
    progress();
    surface();
    coverageChart();
    forms();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
