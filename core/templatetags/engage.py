"""The site's template builtins (settings.TEMPLATES "builtins": no `{% load %}` needed).

One way to write a number everywhere: thousands separators, whole numbers without ".0",
percentages with one decimal, a dash for "no value". Charts format with the same rules
(static/js/charts.js) so an axis, a tooltip and the table under it agree.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()

DASH = "—"


def _number(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _format(number: Decimal, places: int) -> str:
    text = f"{number:,.{places}f}"
    if places and "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@register.filter
def num(value, places=1) -> str:
    """12345.0 -> "12,345"; 12.34 -> "12.3"; 12.0 -> "12"; None -> "—". `places`: most decimals shown."""
    number = _number(value)
    if number is None:
        return DASH if value is None or value == "" else str(value)
    return _format(number, int(places))


@register.filter
def signed(value, places=1) -> str:
    """A change: "+3.5", "-2", "0"."""
    number = _number(value)
    if number is None:
        return DASH if value is None or value == "" else str(value)
    text = _format(number, int(places))
    return f"+{text}" if number > 0 and text != "0" else text


@register.filter
def pct(value, signed_=False) -> str:
    """A value already in percent: 42.35 -> "42.4%" (always one decimal); None -> "—"."""
    number = _number(value)
    if number is None:
        return DASH
    text = f"{number:,.1f}"
    text = "0.0" if text == "-0.0" else text
    if signed_ and number > 0 and text != "0.0":
        text = "+" + text
    return f"{text}%"


@register.filter
def share(value) -> str:
    """A fraction as a percentage: 0.4235 -> "42.4%"."""
    number = _number(value)
    return DASH if number is None else pct(number * 100)


@register.filter
def sub(value, other):
    """value - other (for a change shown with `signed`); None when either is missing."""
    a, b = _number(value), _number(other)
    return None if a is None or b is None else a - b


# --- Navigation -------------------------------------------------------------------------------------------

# (namespace, url name) -> (section, item). A namespace alone means every page of it.
_PLACES = {
    (None, "tenant_home"): ("home", "home"),
    ("insights", "onboarding"): ("home", "home"),
    ("scoring", "users"): ("people", "users"),
    ("scoring", "user_detail"): ("people", "users"),
    ("scoring", "accounts"): ("people", "accounts"),
    ("scoring", "account_detail"): ("people", "accounts"),
    ("events", "debugger"): ("events", "debugger"),
    ("events", "catalog"): ("events", "catalog"),
    ("events", "imports"): ("events", "imports"),
    ("events", "import_detail"): ("events", "imports"),
    ("events", "setup"): ("events", "setup"),
    ("accounts", "members"): ("settings", "members"),
    ("accounts", "api_keys"): ("settings", "api_keys"),
    ("accounts", "tenant_settings"): ("settings", "workspace"),
    ("insights", None): ("insights", "insights"),
    ("scoring", None): ("scoring", "scoring"),
    ("events", None): ("events", "events"),
    ("surveys", None): ("survey", "survey"),
    ("alerts", None): ("alerts", "alerts"),
    ("accounts", None): ("settings", "settings"),
}


def nav_place_of(namespace: str | None, url_name: str | None) -> dict:
    namespace = namespace or None
    section, item = _PLACES.get((namespace, url_name)) or _PLACES.get((namespace, None)) or ("", "")
    return {"section": section, "item": item}


@register.simple_tag(takes_context=True)
def nav_place(context) -> dict:
    """Where the current page sits in the sidebar: {"section", "item"} (empty outside a workspace)."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match is None:
        return {"section": "", "item": ""}
    return nav_place_of(match.namespace, match.url_name)
