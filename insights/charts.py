"""Chart specs of the dashboard and the insight pages, drawn by static/js/charts.js (Chart.js).

The spec (`scoring.charts.spec`) is embedded with `json_script` (data, not script: the CSP holds):
values on hover, formatted axes, partial periods drawn lighter (bars) or dashed (lines), version
changes as marked lines, a click on a bar opening the rows behind it. Every chart's numbers are also
on its page as a table or a CSV.
"""

from __future__ import annotations

import math
from datetime import date

from core.templatetags.engage import num, pct
from scoring.charts import ACCENT, ENGAGED_COLOR, GREY, day_labels, product_spec, spec
from scoring.charts import TIER_COLORS as SPEC_TIER_COLORS
from scoring.charts import marks as version_marks
from scoring.selectors import version_changes

from .queries.common import TIERS

__all__ = ["product_spec", "spec"]


def users_spec(series) -> dict:
    days = [r.day for r in series]
    return spec(
        "line", day_labels(days),
        [{"name": "Active (points in the window)", "values": [r.active_users for r in series], "color": ACCENT},
         {"name": "Engaged (tier high or medium)", "values": [r.engaged_users for r in series],
          "color": ENGAGED_COLOR, "fill": True}],
        y={"title": "end users", "min": 0},
        marks=version_marks(days, version_changes(series)),
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
        "bar", [r.label + (" (not scored yet)" if r.pending else " (so far)" if r.partial else "") for r in rows],
        # A period with no scored day yet (pending) has no bars, not zero ones.
        [{"name": "New", "values": [None if r.pending else r.new for r in rows], "color": "#12805c", "stack": "g"},
         {"name": "Resurrected", "values": [None if r.pending else r.resurrected for r in rows], "color": "#4f46e5",
          "stack": "g"},
         {"name": "Retained", "values": [None if r.pending else r.retained for r in rows], "color": "#a3b1f5",
          "stack": "g"},
         {"name": "Churned", "values": [None if r.pending else -r.churned for r in rows], "color": "#d92d20",
          "stack": "g", "absolute": True}],
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


def adoption_spec(rows, links: list[str | None] | None = None) -> dict:
    """Share of active end users and accounts per activity as horizontal bars; a bar opens its activity."""
    return spec(
        "bar", [r.name for r in rows],
        [{"name": "End users", "values": [r.user_share for r in rows], "color": ACCENT, "links": links},
         {"name": "Accounts", "values": [r.account_share for r in rows], "color": "#a3b1f5", "links": links}],
        horizontal=True, y={"title": "share of the active ones", "unit": "%", "min": 0, "max": 100},
        height=max(220, 80 + 44 * len(rows)),
        footer=[[f"{r.users:,} end users, {r.accounts:,} accounts"
                 + (f"; {pct(r.user_share_before)} of users the window before" if r.user_share_before is not None
                    else "")] for r in rows],
    )


def adoption_trend_spec(weeks: list[date], series: dict[str, list], today: date) -> dict:
    """Weekly share of active end users per activity; the week under way is dashed (not over)."""
    palette = (ACCENT, ENGAGED_COLOR, "#f59e0b", "#d92d20", "#0ea5e9", "#a855f7", "#65a30d", "#db2777",
               "#475467", "#14b8a6", "#f97316", "#6366f1")
    partial = [w <= today < w.fromordinal(w.toordinal() + 7) for w in weeks]
    labels = [f"{w:%b %-d}" + (" (so far)" if p else "") for w, p in zip(weeks, partial, strict=True)]
    return spec(
        "line", labels,
        [{"name": name, "values": values, "color": palette[i % len(palette)]}
         for i, (name, values) in enumerate(series.items())],
        y={"title": "share of active end users", "unit": "%", "min": 0, "max": 100}, partial=partial,
        height=360,
    )


def truth_spec(columns, horizon: int) -> dict:
    """AUC per past snapshot day, one line per column (published, survey, fitted); 0.50 is a coin."""
    days = sorted({d.day for _, bt in columns for d in bt.days})
    palette = (ACCENT, "#f59e0b", ENGAGED_COLOR, "#d92d20")
    lines = []
    for i, (name, bt) in enumerate(columns):
        by_day = {d.day: d.auc for d in bt.days}
        lines.append({"name": name, "values": [None if by_day.get(d) is None else round(by_day[d], 3)
                                               for d in days], "color": palette[i % len(palette)]})
    if days:
        lines.append({"name": "A coin (0.50)", "values": [0.5] * len(days), "color": "#98a2b3", "dash": True})
    # From 0.4 (a little below a coin) unless a day fell lower: the differences that matter stay visible.
    low = min([0.4, *(v for line in lines for v in line["values"] if v is not None)])
    return spec("line", day_labels(days), lines, y={"title": f"AUC, still active {horizon} days later",
                                                   "min": math.floor(low * 10) / 10, "max": 1, "decimals": 2},
                empty="No past days to judge yet")


def segment_boxes_spec(segments) -> dict:
    """Points per segment: min–max as a thin bar, Q1–Q3 as a thick one, the median as a tick."""
    shown = [s for s in segments if s.median is not None]
    labels = [f"{s.value} (n={s.scored:,})" for s in shown]
    # A few heavy users put the maximum far above the quartiles: the axis stops at 2.5 × the largest
    # third quartile so the boxes stay readable; the cut whiskers' true maximum is in the tooltip.
    top = max((s.maximum for s in shown), default=0)
    q3 = max((s.q3 for s in shown), default=0)
    y = {"title": "points (subjects with points)", "min": 0}
    if q3 and top > 2.5 * q3:
        y["max"] = _nice(2.5 * q3)
    return spec(
        "bar", labels,
        [{"name": "Min – max", "values": [[s.minimum, s.maximum] for s in shown], "color": GREY, "range": True,
          "width": 0.12},
         {"name": "Q1 – Q3", "values": [[s.q1, s.q3] for s in shown], "color": "#a3b1f5", "range": True,
          "width": 0.55},
         {"name": "Median", "values": [s.median for s in shown], "color": "#1d2330", "tick": True}],
        y=y, partial=[bool(s.thin) for s in shown],
        footer=[[f"Mean {num(s.mean)}; {s.subjects:,} in the segment"
                 + (" (too few to compare)" if s.thin else "")] for s in shown],
        empty="No segment has points yet",
    )


def _nice(value: float) -> float:
    """The next round number above `value` (1, 2 or 5 times a power of ten), for an axis end."""
    power = 10 ** math.floor(math.log10(value)) if value > 0 else 1
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)
