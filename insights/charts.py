"""pygal charts of the dashboard and insight pages, rendered as SVG documents.

Served as image responses and embedded with <img src>, so the pages keep their
strict CSP (an SVG image runs no script; pygal's CDN tooltip script is off with
`js=[]`). Every chart's numbers are also on its page as a table or CSV.
"""

from __future__ import annotations

from datetime import date

import pygal
from pygal.style import Style

from scoring.charts import STYLE

TIER_COLORS = {"high": "#2b8a3e", "medium": "#74b816", "low": "#f59f00", "new": "#3b5bdb", "dormant": "#adb5bd"}
GROWTH_STYLE = Style(**{**STYLE.to_dict(), "colors": ("#2b8a3e", "#3b5bdb", "#74b816", "#c92a2a")})


def _style(colors: tuple[str, ...] | None = None) -> Style:
    if not colors:
        return STYLE
    return Style(**{**STYLE.to_dict(), "colors": colors})


def _common(**extra) -> dict:
    return {"js": [], "width": 900, "height": 320, "legend_at_bottom": True, "truncate_label": -1,
            "no_data_text": "No data yet", **extra}


def _number(value) -> str:
    """Axis labels without pygal's long decimals (e.g. 10 digits on a secondary axis)."""
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.1f}"


def _day_labels(chart, days: list[date], marks: list[tuple[date, int]]) -> None:
    mark_days = dict(marks)
    labels = [f"{d:%b %d} · v{mark_days[d]}" if d in mark_days else f"{d:%b %d}" for d in days]
    chart.x_labels = labels
    step = max(1, len(days) // 12)
    chart.x_labels_major = [label for i, label in enumerate(labels) if i % step == 0 or days[i] in mark_days]


def daily_lines(
    title: str, days: list[date], series: dict[str, list], marks: list[tuple[date, int]],
    secondary: dict[str, list] | None = None, colors: tuple[str, ...] | None = None,
) -> bytes:
    """Daily lines; `secondary` series use the right-hand axis; version changes are labelled."""
    chart = pygal.Line(title=title, style=_style(colors), x_label_rotation=30, show_minor_x_labels=False,
                       show_dots=len(days) <= 31, value_formatter=_number, **_common())
    _day_labels(chart, days, marks)
    if not days:
        return chart.render()  # pygal's secondary axis fails on no data; its "No data yet" text is the answer
    for name, values in series.items():
        chart.add(name, values)
    for name, values in (secondary or {}).items():
        chart.add(name, values, secondary=True)
    return chart.render()


def tier_bars(title: str, rows: list[dict]) -> bytes:
    """Tier counts 30 days ago next to today."""
    chart = pygal.Bar(title=title, style=_style(("#adb5bd", "#3b5bdb")), **_common())
    chart.x_labels = [r["label"] for r in rows]
    chart.add("30 days earlier", [r["then"] for r in rows])
    chart.add("Latest day", [r["now"] for r in rows])
    return chart.render()


def growth_bars(title: str, rows) -> bytes:
    """New, resurrected and retained above the axis, churned below it."""
    chart = pygal.StackedBar(title=title, style=GROWTH_STYLE, x_label_rotation=30, **_common())
    chart.x_labels = [r.label + (" (so far)" if r.partial else "") for r in rows]
    chart.add("New", [r.new for r in rows])
    chart.add("Resurrected", [r.resurrected for r in rows])
    chart.add("Retained", [r.retained for r in rows])
    chart.add("Churned", [-r.churned for r in rows])
    return chart.render()


def share_bars(title: str, labels: list[str], series: dict[str, list], horizontal: bool = True) -> bytes:
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    height = max(320, 40 + 26 * len(labels) * max(1, len(series))) if horizontal else 320
    chart = kind(title=title, style=STYLE, range=(0, 100), **_common(height=height))
    chart.x_labels = labels
    for name, values in series.items():
        chart.add(name, values)
    return chart.render()


def weekly_lines(title: str, weeks: list[date], series: dict[str, list]) -> bytes:
    chart = pygal.Line(title=title, style=STYLE, x_label_rotation=30, range=(0, 100), **_common(height=380))
    chart.x_labels = [f"{w:%b %d}" for w in weeks]
    for name, values in series.items():
        chart.add(name, values)
    return chart.render()


def boxes(title: str, segments) -> bytes:
    """Box plots from precomputed quartiles.

    pygal computes quartiles itself (Mendenhall-Sincich); for the nine values
    min, q1 x3, median, q3 x3, max its Q1, median and Q3 are exactly ours.
    """
    chart = pygal.Box(title=title, style=STYLE, box_mode="extremes", **_common())
    for seg in segments:
        if seg.median is None:
            continue
        values = [seg.minimum, *[seg.q1] * 3, seg.median, *[seg.q3] * 3, seg.maximum]
        chart.add(f"{seg.value} (n={seg.scored})", values)
    return chart.render()


def tier_share_bars(title: str, labels: list[str], shares: list[dict]) -> bytes:
    """Stacked tier shares (0-100%) per group."""
    colors = tuple(TIER_COLORS.values())
    chart = pygal.StackedBar(title=title, style=_style(colors), range=(0, 100), **_common())
    chart.x_labels = labels
    for tier in TIER_COLORS:
        chart.add(tier, [s.get(tier) or 0 for s in shares])
    return chart.render()
