"""The progress table as one self-contained HTML page: inline CSS, inline SVG charts drawn
here, no scripts, fonts or images from elsewhere (the page is mailed and opened offline)."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from html import escape
from pathlib import Path
from typing import Any

from creditbus.services.reports.progress import (
    ANNEX_HEADER,
    COMPLETENESS_NOTE,
    FACTS_HEADER,
    FACTS_TITLE,
    GROUPS_HEADER,
    GROUPS_TITLE,
    TITLE,
    ProgressReport,
)

CSS = """
body { font-family: "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "SimSun", sans-serif;
       margin: 24px auto; max-width: 1200px; color: #222; padding: 0 16px; }
h1 { text-align: center; font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 18px; border-left: 4px solid #b22222; padding-left: 8px; margin-top: 32px; }
.subtitle { text-align: center; color: #666; font-size: 13px; margin-bottom: 16px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { flex: 1 1 160px; border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; }
.card .v { font-size: 24px; font-weight: bold; color: #b22222; }
.card .k { font-size: 13px; color: #666; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #444; padding: 4px 6px; vertical-align: middle; }
th { background: #f2f2f2; }
td.c { text-align: center; } td.n { text-align: right; }
tr.no td { background: #fff7f0; }
.note { color: #555; font-size: 12px; margin-top: 8px; }
svg text { font-size: 12px; fill: #222; }
"""

BAR_COLOR = "#c0392b"
MUTED_COLOR = "#bbbbbb"


def bar_chart(items: Sequence[tuple[str, float, str]], *, maximum: float, width: int = 760,
              label_width: int = 190, row: int = 22, color: str = BAR_COLOR,
              title: str = "") -> str:
    """A horizontal bar chart as inline SVG: (label, value, shown value) per bar."""
    top = 8
    height = top + row * max(len(items), 1) + 8
    plot = width - label_width - 70
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for i, (label, value, shown) in enumerate(items):
        y = top + i * row
        length = 0.0 if maximum <= 0 else plot * max(value, 0.0) / maximum
        fill = color if value > 0 else MUTED_COLOR
        parts.append(f'<text x="{label_width - 6}" y="{y + row * 0.68:.1f}" '
                     f'text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{max(length, 1.0):.1f}" '
                     f'height="{row - 6}" fill="{fill}"/>')
        parts.append(f'<text x="{label_width + max(length, 1.0) + 6:.1f}" '
                     f'y="{y + row * 0.68:.1f}">{escape(shown)}</text>')
    parts.append(f'<line x1="{label_width}" y1="{top}" x2="{label_width}" '
                 f'y2="{height - 8}" stroke="#444"/>')
    parts.append("</svg>")
    return "".join(parts)


def _cell(value: Any, numeric: bool = False) -> str:
    text = "" if value is None else str(value)
    css = ' class="n"' if numeric else ""
    return f"<td{css}>{escape(text)}</td>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: AbstractSet[int],
           centred: AbstractSet[int] = frozenset(),
           row_classes: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, values in enumerate(rows):
        cells = []
        for col, value in enumerate(values):
            if col in centred:
                cells.append(f'<td class="c">{escape(str(value))}</td>')
            else:
                cells.append(_cell(value, col in numeric))
        css = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: ProgressReport) -> str:
    rows = report.rows
    persons = sum(r.persons for r in rows)
    records = sum(r.records for r in rows)
    most = max((r.records for r in rows), default=0)
    records_chart = bar_chart([(r.unit_name, float(r.records), str(r.records)) for r in rows],
                              maximum=float(most or 1), title="各单位档案记录数")
    scored = [(g.name, g.completeness or 0.0,
               "—" if g.completeness is None else f"{g.completeness:.1f}%")
              for g in report.groups]
    completeness_chart = bar_chart(scored, maximum=100.0, label_width=230,
                                   color="#2e86c1", title="各重点人群档案完整度")
    cards = [
        (f"{report.established_count} / {len(rows)}", "已建立档案的单位"),
        (str(persons), "建档人数（按单位累计）"),
        (str(records), "现行档案记录数"),
        (str(sum(r.retracted for r in rows)), "已撤回记录数"),
    ]
    cards_html = "".join(f'<div class="card"><div class="v">{escape(v)}</div>'
                         f'<div class="k">{escape(k)}</div></div>' for v, k in cards)
    annex = _table(ANNEX_HEADER, [r.annex_cells() for r in rows], numeric=set(),
                   centred={0, 2}, row_classes=["" if r.established else "no" for r in rows])
    facts = _table(FACTS_HEADER, [f.cells() for f in report.facts], numeric={3, 4, 5, 7, 8},
                   centred={0})
    groups = _table(GROUPS_HEADER, [g.cells() for g in report.groups], numeric={2, 3, 4, 5})
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(TITLE)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{escape(TITLE)}</h1>
<div class="subtitle">{escape(report.subtitle)}</div>
<div class="cards">{cards_html}</div>
<h2>各单位档案记录数</h2>
{records_chart}
<h2>各重点人群档案完整度</h2>
{completeness_chart}
<h2>{escape(TITLE)}</h2>
{annex}
<h2>{escape(FACTS_TITLE)}</h2>
{facts}
<h2>{escape(GROUPS_TITLE)}</h2>
{groups}
<p class="note">说明：{escape(COMPLETENESS_NOTE)}</p>
</body>
</html>
"""


def write_html(report: ProgressReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
