"""Server-side SVG charts (pygal), served as separate image responses.

The page embeds them with <img src>, so the strict CSP of the HTML page is not
relaxed: an SVG image renders its own styles and runs no scripts. pygal's
default tooltip script comes from a CDN, so it is switched off (`js=[]`).
"""

from __future__ import annotations

from datetime import date

import pygal
from pygal.style import Style

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1d2330",
    foreground_strong="#1d2330",
    foreground_subtle="#e4e7ec",
    colors=("#3b5bdb", "#2b8a3e", "#f59f00", "#c92a2a"),
    font_family="system-ui, sans-serif",
)


def line_chart(
    title: str, days: list[date], series: dict[str, list[float | None]], marks: list[tuple[date, int]]
) -> bytes:
    """A daily line chart; days where the model version changed get a labelled major tick."""
    chart = pygal.Line(
        title=title,
        style=STYLE,
        js=[],
        width=900,
        height=320,
        x_label_rotation=30,
        show_minor_x_labels=False,
        show_dots=len(days) <= 31,
        legend_at_bottom=True,
        truncate_label=-1,
        no_data_text="No scores yet",
    )
    mark_days = {day: version for day, version in marks}
    labels = [f"{d:%b %d} · v{mark_days[d]}" if d in mark_days else f"{d:%b %d}" for d in days]
    chart.x_labels = labels
    # Show a label about every week, and always where the version changed.
    step = max(1, len(days) // 12)
    chart.x_labels_major = [label for i, label in enumerate(labels) if i % step == 0 or days[i] in mark_days]
    for name, values in series.items():
        chart.add(name, values)
    return chart.render()


TIER_COLORS = {"high": "#2b8a3e", "medium": "#74b816", "low": "#f59f00", "new": "#3b5bdb", "dormant": "#adb5bd"}
POINTS_COLOR = "#1d2330"
THRESHOLD_COLORS = {"high": "#2b8a3e", "medium": "#74b816"}


def tier_chart(
    title: str,
    days: list[date],
    points: list[float],
    tiers: list[str],
    marks: list[tuple[date, int]],
    thresholds: dict[str, float] | None = None,
) -> bytes:
    """A score history: the points line, a dot per day coloured by that day's tier (one legend entry per
    tier), and, for a points-threshold tier rule, the thresholds as dashed lines.

    Tiers by percentile have no fixed points boundary (it moves with everyone else's scores), so the
    dots carry the tier rather than shaded bands.
    """
    present = [tier for tier in TIER_COLORS if tier in tiers]
    colors = (POINTS_COLOR, *(TIER_COLORS[t] for t in present), *(THRESHOLD_COLORS[t] for t in thresholds or {}))
    style = Style(**{**STYLE.to_dict(), "colors": colors})
    chart = pygal.Line(
        title=title,
        style=style,
        js=[],
        width=900,
        height=320,
        x_label_rotation=30,
        show_minor_x_labels=False,
        show_dots=False,
        legend_at_bottom=True,
        truncate_label=-1,
        no_data_text="No scores yet",
    )
    mark_days = dict(marks)
    labels = [f"{d:%b %d} · v{mark_days[d]}" if d in mark_days else f"{d:%b %d}" for d in days]
    chart.x_labels = labels
    step = max(1, len(days) // 12)
    chart.x_labels_major = [label for i, label in enumerate(labels) if i % step == 0 or days[i] in mark_days]
    if not days:
        return chart.render()
    chart.add("Points", points, stroke_style={"width": 2})
    for tier in present:
        values = [p if t == tier else None for p, t in zip(points, tiers, strict=True)]
        chart.add(f"{tier} tier", values, stroke=False, show_dots=True, dots_size=3.5)
    for tier, value in (thresholds or {}).items():
        chart.add(f"{tier} from {value:g}", [value] * len(days), stroke_style={"width": 1, "dasharray": "6,4"})
    return chart.render()
