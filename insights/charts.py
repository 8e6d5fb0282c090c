"""pygal charts of the dashboard and insight pages, rendered as SVG documents.

Served as image responses and embedded with <img src>, so the pages keep their
strict CSP (an SVG image runs no script; pygal's CDN tooltip script is off with
`js=[]`). Every chart's numbers are also on its page as a table or CSV.
"""

from __future__ import annotations

from datetime import date

import pygal
from pygal.style import Style

from core.templatetags.engage import num, pct
from scoring.charts import STYLE
from scoring.selectors import version_changes

from .queries.common import TIERS

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


# --- Interactive charts (Chart.js, static/vendor/chartjs) -----------------------------------------------
#
# The pages draw their charts in the browser from a small spec embedded with `json_script` (data, not
# script: the CSP holds) and read by static/js/charts.js: values on hover, formatted axes, partial periods
# drawn lighter (bars) or dashed (lines), version changes as marked lines, a click on a bar opens the rows
# behind it. The pygal SVGs above stay as the .svg endpoints and the no-script fallback.

ENGAGED_COLOR = "#12805c"
ACCENT = "#4f46e5"
GREY = "#c3c8d2"
SPEC_TIER_COLORS = {"high": "#12805c", "medium": "#65a30d", "low": "#f59e0b", "new": "#4f46e5", "dormant": "#98a2b3"}


def _marks(days: list[date], marks: list[tuple[date, int]]) -> list[dict]:
    index = {d: i for i, d in enumerate(days)}
    return [{"at": index[d], "label": f"v{v}"} for d, v in marks if d in index]


def spec(kind: str, labels: list[str], series: list[dict], **options) -> dict:
    """A chart for static/js/charts.js. `series`: name, values, color, and optionally links (a URL per
    value, or None), axis ("y2"), stack, absolute (tooltip shows |value|). `options`: y / y2 ({title,
    unit, min, max}), partial (a bool per label), marks, stacked, horizontal, height, footer (extra
    tooltip lines per label), empty (text when there is nothing to draw)."""
    return {"kind": kind, "labels": labels, "series": series, **options}


def product_spec(series) -> dict:
    """Mean points per active user per day: the product score a person reads; the total rides in the tooltip."""
    days = [r.day for r in series]
    return spec(
        "line", [f"{d:%b %-d}" for d in days],
        [{"name": "Mean points per active user", "values": [r.mean_points for r in series], "color": ACCENT,
          "fill": True}],
        y={"title": "points per active user", "min": 0},
        marks=_marks(days, version_changes(series)),
        footer=[[f"Total {_thousands(r.total_points)} points", f"{r.active_users:,} active users"] for r in series],
    )


def users_spec(series) -> dict:
    days = [r.day for r in series]
    return spec(
        "line", [f"{d:%b %-d}" for d in days],
        [{"name": "Active (points in the window)", "values": [r.active_users for r in series], "color": ACCENT},
         {"name": "Engaged (tier high or medium)", "values": [r.engaged_users for r in series],
          "color": ENGAGED_COLOR, "fill": True}],
        y={"title": "end users", "min": 0},
        marks=_marks(days, version_changes(series)),
        footer=[[f"Engaged share {_share(r.engaged_users, r.active_users)}"] for r in series],
    )


def tiers_spec(rows: list[dict], users_url: str) -> dict:
    """Tier counts then and now; a click on a bar opens the end users in that tier today."""
    links = [f"{users_url}?tier={r['tier']}" for r in rows]
    return spec(
        "bar", [r["label"] for r in rows],
        [{"name": "30 days earlier", "values": [r["then"] for r in rows], "color": GREY},
         {"name": "Latest day", "values": [r["now"] for r in rows],
          "colors": [SPEC_TIER_COLORS.get(r["tier"], ACCENT) for r in rows], "color": ACCENT, "links": links}],
        y={"title": "end users", "min": 0},
    )


def growth_spec(rows) -> dict:
    """New, resurrected and retained above the axis, churned below; the period under way drawn lighter."""
    return spec(
        "bar", [r.label + (" (so far)" if r.partial else "") for r in rows],
        [{"name": "New", "values": [r.new for r in rows], "color": "#12805c", "stack": "g"},
         {"name": "Resurrected", "values": [r.resurrected for r in rows], "color": "#4f46e5", "stack": "g"},
         {"name": "Retained", "values": [r.retained for r in rows], "color": "#a3b1f5", "stack": "g"},
         {"name": "Churned", "values": [-r.churned for r in rows], "color": "#d92d20", "stack": "g",
          "absolute": True}],
        stacked=True, partial=[bool(r.partial) for r in rows],
        y={"title": "count (churned below zero)"},
        footer=[[f"Quick Ratio {num(r.quick_ratio, 2)}"
                 + (" (period not over)" if r.partial else "")] for r in rows],
    )


def segment_tiers_spec(segments, link=None) -> dict:
    """Tier shares per segment as 100% horizontal bars; `link(segment, tier)` gives each bar's rows."""
    return spec(
        "bar", [s.value for s in segments],
        [{"name": tier, "values": [s.tiers.get(tier) or 0 for s in segments], "color": SPEC_TIER_COLORS[tier],
          "stack": "t", "links": [link(s, tier) for s in segments] if link else None} for tier in TIERS],
        stacked=True, horizontal=True, y={"title": "share of the segment", "unit": "%", "min": 0, "max": 100},
        height=max(220, 70 + 34 * len(segments)),
    )


def outcome_spec(rows, horizons, short: bool = False) -> dict:
    """Share still active h days later per group; deciles get short labels ("D10") so none overlap."""
    labels = [_short_group(r.group) if short else r.group for r in rows]
    return spec(
        "bar", labels,
        [{"name": f"{h} days later", "values": [r.share(h) for r in rows], "color": color}
         for h, color in zip(horizons, (ACCENT, "#a3b1f5"), strict=False)],
        y={"title": "still active", "unit": "%", "min": 0, "max": 100},
        # Lighter: groups too thin to compare (the table says "too few").
        partial=[bool(r.thin) for r in rows],
        footer=[[f"{r.group}: {r.subjects:,} scored" + (" (too few to compare)" if r.thin else "")] for r in rows],
    )


def _short_group(group: str) -> str:
    return f"D{group.split()[-1]}" if group.startswith("decile ") else group


def _thousands(value) -> str:
    return num(value, 0)


def _share(part, whole) -> str:
    return pct(100 * part / whole) if whole else "—"
