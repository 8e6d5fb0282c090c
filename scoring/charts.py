"""Chart specs for static/js/charts.js (Chart.js, vendored in static/vendor/chartjs).

A page embeds a spec with `json_script` (data, not script: the CSP holds) through
templates/_chart.html; the browser draws it: values on hover, formatted axes,
partial periods lighter (bars) or dashed (lines), version changes as marked lines,
a click on a bar opening the rows behind it. Every chart's numbers are also on its
page as a table or a CSV. The insight pages' specs are in insights/charts.py.
"""

from __future__ import annotations

from datetime import date

from core.templatetags.engage import num

from .models import TierMethod

ACCENT = "#4f46e5"
ENGAGED_COLOR = "#12805c"
GREY = "#c3c8d2"
POINTS_COLOR = "#1d2330"
TIER_COLORS = {"high": "#12805c", "medium": "#65a30d", "low": "#f59e0b", "new": "#4f46e5", "dormant": "#98a2b3"}


def spec(kind: str, labels: list[str], series: list[dict], **options) -> dict:
    """A chart for static/js/charts.js. `series`: name, values, color, and optionally colors (one per
    value), links (a URL per value, or None), axis ("y2"), stack, absolute (tooltip shows |value|),
    fill, dash (a dashed line without dots), dots (dots without a line, absent from the tooltip),
    range (floating bars: each value is [low, high]), width (bar width, 0-1). `options`: y / y2 ({title,
    unit, min, max}), partial (a bool per label), marks, stacked, horizontal, height, footer (extra
    tooltip lines per label), empty (text when there is nothing to draw)."""
    return {"kind": kind, "labels": labels, "series": series, **options}


def day_labels(days: list[date]) -> list[str]:
    return [f"{d:%b %-d}" for d in days]


def marks(days: list[date], changes: list[tuple[date, int]]) -> list[dict]:
    """Version changes (scoring.selectors.version_changes) as marks at their day's index."""
    index = {d: i for i, d in enumerate(days)}
    return [{"at": index[d], "label": f"v{v}"} for d, v in changes if d in index]


def product_spec(series, changes: list[tuple[date, int]]) -> dict:
    """Mean points per active user per day: the product score a person reads; the total rides in the tooltip."""
    days = [r.day for r in series]
    return spec(
        "line", day_labels(days),
        [{"name": "Mean points per active user", "values": [r.mean_points for r in series], "color": ACCENT,
          "fill": True}],
        y={"title": "points per active user", "min": 0},
        marks=marks(days, changes),
        footer=[[f"Total {num(r.total_points, 0)} points", f"{r.active_users:,} active users"] for r in series],
        empty="No scores yet",
    )


def history_spec(series, changes: list[tuple[date, int]], model=None) -> dict:
    """A score history: the points line with a dot per day in that day's tier colour (one legend entry per
    tier) and, for a points-threshold tier rule, the thresholds as dashed lines.

    Tiers by percentile have no fixed points boundary (it moves with everyone else's scores), so the
    dots carry the tier rather than shaded bands.
    """
    days = [r.day for r in series]
    points = [r.points for r in series]
    tiers = [r.tier for r in series]
    lines = [{"name": "Points", "values": points, "color": POINTS_COLOR}]
    for tier in TIER_COLORS:
        if tier in tiers:
            lines.append({"name": f"{tier} tier", "values": [p if t == tier else None for p, t in zip(
                points, tiers, strict=True)], "color": TIER_COLORS[tier], "dots": True})
    if model is not None and model.tier_method == TierMethod.POINTS and days:
        for tier, value in (("high", model.tier_high), ("medium", model.tier_medium)):
            lines.append({"name": f"{tier} from {num(value)}", "values": [value] * len(days),
                          "color": TIER_COLORS[tier], "dash": True})
    footer = [[f"Tier {r.tier} · v{r.model.version}"
               + (f" · percentile {r.percentile}" if getattr(r, "percentile", None) is not None else "")]
              for r in series]
    return spec("line", day_labels(days), lines, y={"title": "points", "min": 0}, marks=marks(days, changes),
                footer=footer, empty="No scores yet")
