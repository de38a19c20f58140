"""Scenario comparison as an Excel workbook and a self-contained HTML page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from tiercare.scenarios.models import ScenarioEvaluation
from tiercare.scenarios.service import comparison_rows

METRIC_LABELS = {
    "mean_minutes": "平均时间（分钟） Mean minutes",
    "p90_minutes": "90%分位时间 P90 minutes",
    "population_per_facility": "机构平均服务人口 Population per facility",
    "equity_gap": "乡镇覆盖差距 Equity gap (share)",
    "facilities": "机构数 Facilities",
}


CENTRE_LABELS = {
    "chest_pain": "胸痛中心 Chest pain centre", "stroke": "卒中中心 Stroke centre",
    "trauma": "创伤中心 Trauma centre", "critical_maternal": "危重孕产妇救治中心 Critical maternal care",
    "critical_neonatal": "危重新生儿救治中心 Critical neonatal care",
}


def _group(name: str) -> str:
    from tiercare.registry.accessibility import tiers

    tier = tiers()["tiers"].get(name)
    return tier["label_zh"] if tier else CENTRE_LABELS.get(name, name)


def _label(metric: str) -> str:
    if metric.startswith("covered_"):
        return f"{metric[len('covered_'):]}分钟覆盖人口 Covered within {metric[len('covered_'):]} min"
    return METRIC_LABELS.get(metric, metric)


def write_comparison(evaluations: list[tuple[str, ScenarioEvaluation]], path: Path) -> Path:
    """Write the side-by-side comparison (and each scenario's village changes) to .xlsx/.html."""
    rows = comparison_rows(evaluations)
    names = ["baseline"] + [name for name, _ in evaluations]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "comparison"
        sheet.append(["group", "metric", *names])
        for row in rows:
            sheet.append([_group(row["group"]), _label(row["metric"]), *[row[n] for n in names]])
        for name, evaluation in evaluations:
            villages = workbook.create_sheet(name[:28] or "scenario")
            keys = list(evaluation.villages[0]) if evaluation.villages else []
            villages.append(keys)
            for village in evaluation.villages:
                villages.append([village[k] for k in keys])
        workbook.save(path)
        return path
    path.write_text(comparison_html(evaluations, rows, names), encoding="utf-8")
    return path


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return html.escape(str(value))


def comparison_html(evaluations: list[tuple[str, ScenarioEvaluation]],
                    rows: list[dict[str, Any]], names: list[str]) -> str:
    """A printable HTML page of the comparison (no external assets)."""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for row in rows:
        base = row["baseline"]
        cells = []
        for name in names:
            value = row[name]
            style = ""
            if name != "baseline" and isinstance(value, int | float) and isinstance(base, int | float):
                better = value > base if row["metric"].startswith("covered_") else value < base
                if value != base and row["metric"] not in {"facilities", "population_per_facility"}:
                    style = ' class="better"' if better else ' class="worse"'
            cells.append(f"<td{style}>{_cell(value)}</td>")
        body.append(f"<tr><td>{html.escape(_group(row['group']))}</td><td>{html.escape(_label(row['metric']))}"
                    f"</td>{''.join(cells)}</tr>")
    changes = []
    for name, evaluation in evaluations:
        moved = [v for v in evaluation.villages if v["change"] != "none"]
        items = "".join(f"<li>{html.escape(v['name'])} ({v['code']}): {v['change']}</li>"
                        for v in moved[:200])
        changes.append(f"<h2>{html.escape(name)}: {len(moved)} villages change</h2><ul>{items}</ul>")
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>方案比较 Scenario comparison</title>
<style>body{{font-family:sans-serif;margin:2em;color:#1b2733}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccd;padding:4px 8px;text-align:right}}td:first-child,td:nth-child(2),
th:first-child,th:nth-child(2){{text-align:left}}.better{{background:#e3f4e8}}.worse{{background:#fbe4e4}}</style></head><body>
<h1>方案比较 Scenario comparison</h1>
<p>绿色：优于现状；红色：劣于现状。Green: better than the baseline; red: worse. The equity gap
is the difference between the best and worst township's share covered at the first threshold.</p>
<table><thead><tr><th>层级/中心 Group</th><th>指标 Metric</th>{head}</tr></thead><tbody>{''.join(body)}</tbody>
</table>{''.join(changes)}</body></html>"""
