"""Charts as SVG drawn on the server (no JavaScript, a few KB, prints in PDFs): one horizontal bar per group."""

from __future__ import annotations

from decimal import Decimal
from xml.sax.saxutils import escape

from node.reports.catalog import RATIO

BAR_H, GAP, LABEL_W, BAR_W, VALUE_W = 18, 6, 150, 260, 90


def _fmt(value, kind: str) -> str:
    if value is None:
        return "—"
    if kind == RATIO:
        return f"{Decimal(value) * 100:.2f}%"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{Decimal(value):,.2f}"


def bar_chart(section: dict) -> str:
    """An accessible SVG bar chart of ``section["chart"]`` for every row ("" if the section has no chart)."""
    key = section.get("chart")
    if not key or not section["rows"]:
        return ""
    col = next(c for c in section["columns"] if c["key"] == key)
    items = [(str(r["group"]), r.get(key)) for r in section["rows"]]
    top = max((abs(Decimal(v)) for _, v in items if v is not None), default=Decimal(0)) or Decimal(1)
    height = len(items) * (BAR_H + GAP) + GAP + 22
    width = LABEL_W + BAR_W + VALUE_W
    title = f"{section['title']}: {col['label']}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" aria-label="{escape(str(title), {chr(34): "&quot;"})}">',
             f"<title>{escape(str(title))}</title>",
             f'<text x="0" y="14" font-size="12" font-weight="bold" fill="#222">{escape(str(col["label"]))}</text>']
    y = 22 + GAP
    for label, value in items:
        w = int(BAR_W * abs(Decimal(value)) / top) if value is not None else 0
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + BAR_H - 5}" font-size="11" text-anchor="end" '
                     f'fill="#222">{escape(label[:24])}</text>')
        parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{max(w, 1)}" height="{BAR_H}" fill="#1f5f8b"/>')
        parts.append(f'<text x="{LABEL_W + max(w, 1) + 4}" y="{y + BAR_H - 5}" font-size="11" '
                     f'fill="#222">{escape(_fmt(value, col["kind"]))}</text>')
        y += BAR_H + GAP
    parts.append("</svg>")
    return "".join(parts)
