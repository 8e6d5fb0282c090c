"""`{% ws_time value %}`: a moment shown in the workspace's time zone, with the zone named.

Stored times are UTC; a page of a workspace shows them where the team lives (its
settings' time zone), labelled so nobody has to guess (“2026-12-07 10:55 EST”), in
a <time> element whose datetime attribute is the exact ISO moment (its title
names the full zone). `{% ws_time value "date" %}` shows the day only, still in
that zone. Without a workspace in the context (none on a page outside /t/<slug>/)
the value is shown in UTC, labelled UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from django import template
from django.utils.html import format_html

register = template.Library()

FORMATS = {"datetime": "%Y-%m-%d %H:%M", "seconds": "%Y-%m-%d %H:%M:%S", "date": "%Y-%m-%d"}


def _zone(context) -> ZoneInfo:
    tenant = context.get("current_tenant") or context.get("tenant")
    name = getattr(tenant, "time_zone", None)
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


@register.simple_tag(takes_context=True)
def ws_time(context, value, style: str = "datetime", default: str = "—"):
    if value in (None, ""):
        return default
    if not isinstance(value, datetime):
        # A day (DateField) is already a day of the workspace: shown as it is.
        return value.isoformat() if isinstance(value, date) else value
    zone = _zone(context)
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    text = local.strftime(FORMATS.get(style, FORMATS["datetime"]))
    title = f"{local.strftime('%Y-%m-%d %H:%M:%S')} {zone.key}"
    if style == "date":  # a day: its zone in the tooltip only
        return format_html('<time datetime="{}" title="{}">{}</time>', moment.isoformat("T", "seconds"), title, text)
    return format_html(
        '<time datetime="{}" title="{}">{} <abbr class="zone">{}</abbr></time>',
        moment.astimezone(UTC).isoformat(timespec="seconds"),
        title,
        text,
        local.tzname() or zone.key,
    )
