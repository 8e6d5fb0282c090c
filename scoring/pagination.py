"""Cursor pagination of the read API's lists: stable while rows are inserted (docs/api.md).

A list is one or more *phases*, each a queryset read in a keyset order
(sort value, then a unique subject id): the day's snapshots, then, when asked,
the end users with no score. The opaque cursor holds the phase, the last row's
position, the pinned day and model version, and a digest of the filters, so a
sync job's next page continues exactly after the last row it got: a row
inserted meanwhile (a new end user, a recomputed day's fresh row ids) neither
shifts the pages nor makes a row appear twice, and a new scored day does not
switch the listing halfway. Keyset positions use the subject's id, never the
snapshot's row id (a recompute replaces rows).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import F, FloatField, Q, QuerySet, Value
from django.db.models.functions import Cast, Coalesce
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.utils.urls import replace_query_param

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Sorts on a nullable column (percentile) put nulls lowest: -1 is below every percentile.
NULL_SORT = -1.0


class PageParams(serializers.Serializer):
    """The pagination parameters, mixed into a list's query-string serializer."""

    cursor = serializers.CharField(required=False, help_text="The `next` link's cursor; leave out for page 1.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)


class CursorNotFound(NotFound):
    """A cursor that names no page of this list (garbled, or another list's): a 404 naming `cursor`,
    like a page past the end."""

    field = "cursor"


@dataclass(frozen=True)
class Phase:
    rows: QuerySet
    key: str  # a unique subject id column: the tie-break and the position
    sort: str | None = None  # "points" or "-points"; None: by `key` only


@dataclass(frozen=True)
class Cursor:
    pin: dict[str, Any]  # what the first page decided (day, model id) and the filters' digest
    phase: int = 0
    value: float | None = None
    key: int | None = None

    def encode(self) -> str:
        raw = json.dumps({"pin": self.pin, "ph": self.phase, "v": self.value, "k": self.key}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cursor = cls(pin=data["pin"], phase=data["ph"], value=data["v"], key=data["k"])
            if not isinstance(cursor.pin, dict) or not isinstance(cursor.phase, int) or cursor.phase < 0:
                raise ValueError
            if not (cursor.key is None or isinstance(cursor.key, int)):
                raise ValueError
            if not (cursor.value is None or isinstance(cursor.value, int | float)):
                raise ValueError
            return cursor
        except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
            raise CursorNotFound("Not a cursor of this list: use the `next` link as given.") from None


def filters_digest(params: dict[str, Any]) -> str:
    """A short digest of a list's filters: a cursor is refused with other filters than its first page's."""
    text = json.dumps({k: str(v) for k, v in sorted(params.items())}, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def start(params: dict[str, Any], digest: str) -> Cursor | None:
    """The request's cursor (checked against its filters), or None for the first page."""
    if "cursor" not in params:
        return None
    cursor = Cursor.decode(params["cursor"])
    if cursor.pin.get("q") != digest:
        raise CursorNotFound("This cursor belongs to other filters: keep the `next` link as given.")
    return cursor


def _ordered(phase: Phase, after: Cursor | None) -> QuerySet:
    rows = phase.rows
    if phase.sort is None:
        rows = rows.annotate(_sort=Value(0.0, output_field=FloatField()))
        descending = False
    else:
        field = phase.sort.lstrip("-")
        descending = phase.sort.startswith("-")
        rows = rows.annotate(_sort=Coalesce(Cast(F(field), FloatField()), Value(NULL_SORT)))
    if after is not None and after.key is not None:
        value = float(after.value if after.value is not None else 0.0)
        beyond = Q(_sort__lt=value) if descending else Q(_sort__gt=value)
        rows = rows.filter(beyond | Q(_sort=value, **{f"{phase.key}__gt": after.key}))
    return rows.order_by("-_sort" if descending else "_sort", phase.key)


def paginate(request, phases: list[Phase], pin: dict[str, Any], cursor: Cursor | None, page_size: int | None):
    """(the page's rows, the next link or None, the count over all phases)."""
    size = page_size or DEFAULT_PAGE_SIZE
    first = cursor.phase if cursor else 0
    rows: list = []
    next_cursor = None
    for index in range(first, len(phases)):
        phase = phases[index]
        room = size - len(rows)
        got = list(_ordered(phase, cursor if cursor and index == first else None)[: room + 1])
        if len(got) > room:
            rows += got[:room]
            last = rows[-1]
            next_cursor = Cursor(pin=pin, phase=index, value=last._sort, key=getattr(last, phase.key))
            break
        rows += got
        if len(rows) == size and index + 1 < len(phases):
            if phases[index + 1].rows.exists():
                next_cursor = Cursor(pin=pin, phase=index + 1)
            break
    count = sum(phase.rows.count() for phase in phases)
    link = None
    if next_cursor is not None:
        link = replace_query_param(request.build_absolute_uri(), "cursor", next_cursor.encode())
    return rows, link, count


def page_schema(name: str, item: serializers.Serializer):
    from drf_spectacular.utils import inline_serializer

    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(help_text="Rows in the whole list (all pages)."),
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last one."),
            "results": item,
        },
    )
