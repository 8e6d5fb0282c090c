"""Scoring models as code: the JSON format (documented in docs/scoring.md).

`model_to_dict(model)` and `parse_model_file(data)` round-trip exactly: a
file imported as a draft exports to the same JSON.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError

from .models import AccountRollup, ScoringModel, TierMethod

FORMAT = "engagement-scoring-model/1"
MAX_FILE_BYTES = 256_000
KEYS = {
    "format",
    "name",
    "window_days",
    "daily_cap",
    "half_life_days",
    "tier_rule",
    "grace_days",
    "account_rollup",
    "falling",
    "points",
}
# A file without "falling" (written before the flag existed) gets the model's defaults.
DEFAULT_FALLING = {"trend_days": 30, "drop_pct": 50}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def model_to_dict(model: ScoringModel) -> dict[str, Any]:
    weights = model.weights.select_related("activity").order_by("activity__name")
    return {
        "format": FORMAT,
        "name": model.name,
        "window_days": model.window_days,
        "daily_cap": model.daily_cap,
        "half_life_days": model.half_life_days,
        "tier_rule": {
            "method": model.tier_method,
            "high": _number(model.tier_high),
            "medium": _number(model.tier_medium),
        },
        "grace_days": model.grace_days,
        "account_rollup": model.account_rollup,
        "falling": {"trend_days": model.trend_days, "drop_pct": model.falling_drop_pct},
        "points": {w.activity.name: w.points for w in weights},
    }


def model_to_json(model: ScoringModel) -> str:
    return json.dumps(model_to_dict(model), indent=2, ensure_ascii=False) + "\n"


def _int(data: dict, key: str, lo: int, hi: int, *, nullable: bool = False, where: str = "") -> int | None:
    value = data.get(key)
    name = f"{where}{key}"
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"“{name}” must be a whole number{' or null' if nullable else ''}.")
    if not lo <= value <= hi:
        raise ValidationError(f"“{name}” must be between {lo} and {hi}.")
    return value


def parse_model_file(raw: str | bytes | dict) -> dict[str, Any]:
    """Check a model file and return the fields of a draft; ValidationError names the problem."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_FILE_BYTES:
            raise ValidationError(f"The file is larger than {MAX_FILE_BYTES // 1000} KB.")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text.")
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValidationError(f"The file is not valid JSON: {error.msg} (line {error.lineno}).")
    else:
        data = raw
    if not isinstance(data, dict):
        raise ValidationError("The file must hold one JSON object.")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise ValidationError(f"Unknown key “{unknown[0]}”. Allowed: {', '.join(sorted(KEYS))}.")
    if data.get("format") != FORMAT:
        raise ValidationError(f"“format” must be “{FORMAT}”.")
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 100:
        raise ValidationError("“name” must be a text of at most 100 characters.")
    rule = data.get("tier_rule")
    if not isinstance(rule, dict) or set(rule) != {"method", "high", "medium"}:
        raise ValidationError("“tier_rule” must be an object with “method”, “high” and “medium”.")
    if rule["method"] not in TierMethod.values:
        raise ValidationError(f"“tier_rule.method” must be one of {', '.join(TierMethod.values)}.")
    for key in ("high", "medium"):
        if isinstance(rule[key], bool) or not isinstance(rule[key], int | float) or rule[key] < 0:
            raise ValidationError(f"“tier_rule.{key}” must be a number of 0 or more.")
    if data.get("account_rollup") not in AccountRollup.values:
        raise ValidationError(f"“account_rollup” must be one of {', '.join(AccountRollup.values)}.")
    falling = data.get("falling", DEFAULT_FALLING)
    if not isinstance(falling, dict) or set(falling) != {"trend_days", "drop_pct"}:
        raise ValidationError("“falling” must be an object with “trend_days” and “drop_pct”.")
    points = data.get("points")
    if not isinstance(points, dict):
        raise ValidationError("“points” must be an object of activity name → points.")
    for activity in points:
        if not activity or len(activity) > 255:
            raise ValidationError("Activity names in “points” must be 1-255 characters.")
        _int(points, activity, 0, 1000, where="points.")
    return {
        "name": name,
        "window_days": _int(data, "window_days", 1, 365),
        "daily_cap": _int(data, "daily_cap", 1, 1000, nullable=True),
        "half_life_days": _int(data, "half_life_days", 1, 365, nullable=True),
        "tier_method": rule["method"],
        "tier_high": float(rule["high"]),
        "tier_medium": float(rule["medium"]),
        "grace_days": _int(data, "grace_days", 0, 365),
        "account_rollup": data["account_rollup"],
        "trend_days": _int(falling, "trend_days", 7, 90, where="falling."),
        "falling_drop_pct": _int(falling, "drop_pct", 10, 100, nullable=True, where="falling."),
        "points": dict(points),
    }
