/* Referral flow diagram: a Plotly Sankey from the JSON block #flow-data written by the server
   (senders left, receivers right; link colour = direction). Plotly is served locally. */
(function () {
  "use strict";
  function draw() {
    var box = document.getElementById("flow-chart");
    var source = document.getElementById("flow-data");
    if (!box || !source || typeof Plotly === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var height = Math.max(320, Math.min(900, 26 * data.nodes.length));
    box.style.height = height + "px";  /* the box takes the diagram's height before drawing */
    Plotly.newPlot(box, [{
      type: "sankey", arrangement: "snap",
      node: { label: data.nodes, pad: 12, thickness: 14, color: "#718096",
              hovertemplate: "%{label}: %{value}<extra></extra>" },
      link: { source: data.links.source, target: data.links.target, value: data.links.value,
              color: data.links.color, customdata: data.links.label,
              hovertemplate: "%{source.label} → %{target.label} (%{customdata}): %{value}<extra></extra>" }
    }], {
      margin: { l: 8, r: 8, t: 8, b: 8 }, height: height, autosize: true,
      font: { family: "system-ui, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif", size: 12 },
      paper_bgcolor: "rgba(0,0,0,0)"
    }, { displaylogo: false, responsive: true });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
