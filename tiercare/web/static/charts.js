/* Supply charts: one Plotly bar chart per norm, townships against the norm line.
   Data come from the JSON block #supply-data written by the server; Plotly is served locally.
   All chart boxes are laid out first, then drawn, so that each chart gets its final width. */
(function () {
  "use strict";
  function colour(pass) {
    return pass === true ? "#2f855a" : (pass === false ? "#c53030" : "#a0aec0");
  }
  function draw() {
    var holder = document.getElementById("supply-charts");
    var source = document.getElementById("supply-data");
    if (!holder || !source || typeof Plotly === "undefined") { return; }
    var charts = JSON.parse(source.textContent);
    var boxes = charts.map(function (c) {
      var box = document.createElement("div");
      box.className = "chart";
      box.id = c.id;
      holder.appendChild(box);
      return box;
    });
    charts.forEach(function (c, i) {
      Plotly.newPlot(boxes[i], [{
        type: "bar", x: c.names, y: c.values, marker: { color: c.passes.map(colour) },
        hovertemplate: "%{x}: %{y:.2f}<extra></extra>"
      }], {
        title: { text: c.title, font: { size: 14 } },
        margin: { l: 48, r: 16, t: 40, b: 64 }, height: 300, autosize: true,
        yaxis: { rangemode: "tozero" },
        shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: c.target, y1: c.target,
                   line: { color: "#2b6cb0", width: 2, dash: "dash" } }],
        annotations: [{ xref: "paper", x: 1, y: c.target, yanchor: "bottom", xanchor: "right",
                        text: c.target_label, showarrow: false,
                        font: { color: "#2b6cb0", size: 11 } }],
        font: { family: "system-ui, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif" },
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"
      }, { displaylogo: false, responsive: true });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
