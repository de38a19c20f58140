"""Self-contained HTML report of a road-network access analysis.

The page embeds everything it shows (inline SVG map and chart, inline CSS, no script, no CDN), so
it opens on machines isolated from the internet.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["render_access_report", "BAND_COLOURS"]

BAND_COLOURS = ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027")
"""Colours of the travel-time bands (first threshold ... beyond the last); grey = unreachable."""
_UNREACHABLE = "#888888"
_MAX_SEGMENTS = 30_000
_W, _H = 820.0, 620.0


def render_access_report(
    *,
    title: str,
    segments_xy: np.ndarray,
    facilities_xy: np.ndarray,
    facility_ids: Sequence[str],
    demand_xy: np.ndarray,
    demand_minutes: np.ndarray,
    population: np.ndarray,
    thresholds: Sequence[float],
    coverage: dict[str, Any],
    by_division: pd.DataFrame | None = None,
    facility_table: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Render the report page.

    Parameters
    ----------
    segments_xy:
        ``(n, 2, 2)`` road segments in a metric CRS (thinned to 30,000 for the map).
    facilities_xy, demand_xy:
        Point coordinates in the same CRS.
    demand_minutes:
        Travel time of each demand point (``inf``/NaN when unreachable).
    population:
        Population of each demand point (sets the dot area).
    coverage:
        The ``coverage.json`` content (thresholds, population_total, covered, unreachable).
    by_division, facility_table:
        Optional tables shown under the map.
    notes:
        Extra lines (network pieces, speed table version...).

    Returns
    -------
    str
        A complete HTML document.
    """
    pts = np.concatenate([facilities_xy.reshape(-1, 2), demand_xy.reshape(-1, 2)])
    if len(pts) == 0:
        pts = segments_xy.reshape(-1, 2)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = np.maximum((hi - lo) * 0.05, 50.0)
    lo, hi = lo - pad, hi + pad
    scale = min(_W / (hi[0] - lo[0]), _H / (hi[1] - lo[1]))

    def tx(xy: np.ndarray) -> np.ndarray:
        out = (xy - lo) * scale
        out[..., 1] = _H - out[..., 1]
        return out

    segs = segments_xy
    if len(segs):
        inside = np.all((segs >= lo) & (segs <= hi), axis=(1, 2))
        segs = segs[inside]
        if len(segs) > _MAX_SEGMENTS:
            segs = segs[:: int(np.ceil(len(segs) / _MAX_SEGMENTS))]
    road_path = " ".join(f"M{a[0]:.1f} {a[1]:.1f}L{b[0]:.1f} {b[1]:.1f}"
                         for a, b in tx(segs.astype(float)))
    minutes = np.asarray(demand_minutes, dtype=float)
    band = np.searchsorted(np.asarray(thresholds, float), np.where(np.isfinite(minutes),
                                                                   minutes, 0.0), side="left")
    colours = np.array(list(BAND_COLOURS[: len(thresholds)]) + [BAND_COLOURS[-1]])
    fill = np.where(np.isfinite(minutes), colours[np.minimum(band, len(thresholds))],
                    _UNREACHABLE)
    dem = tx(demand_xy.astype(float).reshape(-1, 2))
    pop = np.asarray(population, dtype=float)
    radius = 1.5 + 4.5 * np.sqrt(pop / pop.max()) if len(pop) and pop.max() > 0 \
        else np.full(len(dem), 2.5)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{c}" '
                   f'fill-opacity="0.85"/>'
                   for (x, y), r, c in zip(dem, radius, fill, strict=True))
    fac = tx(facilities_xy.astype(float).reshape(-1, 2))
    squares = "".join(
        f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" class="fac">'
        f"<title>{html.escape(str(i))}</title></rect>"
        for (x, y), i in zip(fac, facility_ids, strict=True))
    legend = _legend(thresholds)
    chart = _coverage_chart(coverage, thresholds)
    div_html = by_division.to_html(float_format=lambda v: f"{v:,.0f}", classes="t") \
        if by_division is not None else ""
    fac_html = facility_table.to_html(float_format=lambda v: f"{v:,.0f}", classes="t",
                                      max_rows=200) if facility_table is not None else ""
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}}
h1{{font-size:1.4em}} h2{{font-size:1.1em;margin-top:1.5em}}
.t{{border-collapse:collapse;font-size:.85em}} .t td,.t th{{border:1px solid #ccc;padding:2px 6px;
text-align:right}} svg{{border:1px solid #ccc;background:#fbfbf8}}
.fac{{fill:#111;stroke:#fff;stroke-width:1}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{note_html}</ul>
<h2>Coverage</h2>
{chart}
<h2>Map: travel time of each demand point to the nearest facility</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="{_W:.0f}" height="{_H:.0f}"
 viewBox="0 0 {_W:.0f} {_H:.0f}" role="img" aria-label="map">
<path d="{road_path}" stroke="#b8b8b8" stroke-width="0.6" fill="none"/>
{dots}{squares}</svg>
{legend}
<h2>By division</h2>{div_html or "<p>No division field was given.</p>"}
<h2>Facilities: population within each threshold</h2>{fac_html}
</body></html>
"""


def _legend(thresholds: Sequence[float]) -> str:
    items = []
    prev = 0.0
    for k, t in enumerate(thresholds):
        items.append((BAND_COLOURS[k], f"{prev:g}–{t:g} min"))
        prev = t
    items.append((BAND_COLOURS[-1], f"> {prev:g} min"))
    items.append((_UNREACHABLE, "unreachable"))
    items.append(("#111", "facility"))
    return "<p>" + " &nbsp; ".join(
        f'<span style="display:inline-block;width:12px;height:12px;background:{c}"></span> '
        f"{html.escape(label)}" for c, label in items) + "</p>"


def _coverage_chart(coverage: dict[str, Any], thresholds: Sequence[float]) -> str:
    total = float(coverage.get("population_total") or 0.0)
    rows = [(f"≤ {t:g} min", float(coverage["covered"][f"{t:g}"])) for t in thresholds]
    rows.append(("unreachable", float(coverage.get("unreachable", 0.0))))
    width, bar_h = 520.0, 24.0
    parts = []
    for k, (label, value) in enumerate(rows):
        share = value / total if total > 0 else 0.0
        colour = BAND_COLOURS[k] if k < len(thresholds) else _UNREACHABLE
        y = k * (bar_h + 6)
        parts.append(
            f'<text x="0" y="{y + 16}" font-size="13">{html.escape(label)}</text>'
            f'<rect x="110" y="{y}" width="{share * width:.1f}" height="{bar_h}" '
            f'fill="{colour}"/>'
            f'<text x="{116 + share * width:.1f}" y="{y + 16}" font-size="12">'
            f"{value:,.0f} ({share:.1%})</text>")
    height = len(rows) * (bar_h + 6)
    return (f'<p>Total population {total:,.0f}</p><svg xmlns="http://www.w3.org/2000/svg" '
            f'width="780" height="{height:.0f}">{"".join(parts)}</svg>')
