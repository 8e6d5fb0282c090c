"""The one CSV writer of the site: every export streams through `csv_response`.

Ids, traits, account and event names come from the public write key, so any
visitor of a customer's site can choose them. A cell beginning with = + - @,
a tab or a carriage return would run as a formula when an admin opens the
export in a spreadsheet (OWASP "CSV Injection"): such text cells get a leading
apostrophe, which spreadsheets show as plain text. Numbers are written as they
are, so a negative change stays a number.

Exports are UTF-8 without a byte order mark; `?bom=1` (the `csv_download`
decorator) puts one first, so Excel opens non-ASCII names correctly.
"""

import csv
import itertools
from collections.abc import Iterable
from functools import wraps

from django.http import HttpResponse, StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """A file-like that hands back what csv.writer writes, for streaming."""

    def write(self, value):
        return value


def csv_rows(header: Iterable, rows: Iterable[Iterable]):
    """The encoded lines of a CSV, formula-safe, one row at a time."""
    writer = csv.writer(_Echo())
    yield writer.writerow([safe_cell(v) for v in header])
    for row in rows:
        yield writer.writerow([safe_cell(v) for v in row])


def csv_response(filename: str, header: Iterable, rows: Iterable[Iterable]) -> StreamingHttpResponse:
    """A streamed CSV download: memory stays flat however many rows `rows` yields."""
    response = StreamingHttpResponse(csv_rows(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


UTF8_BOM = "\ufeff".encode()
BOM_VALUES = {"0": False, "1": True, "false": False, "true": True}


def csv_download(view):
    """A CSV export view taking `?bom=1` (a UTF-8 byte order mark first, for Excel); `bom=0` is the default."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        value = request.GET.get("bom", "0").lower()
        if value not in BOM_VALUES:
            return HttpResponse("bom must be 0 or 1.", status=400, content_type="text/plain; charset=utf-8")
        response = view(request, *args, **kwargs)
        if BOM_VALUES[value] and getattr(response, "streaming", False):
            response.streaming_content = itertools.chain([UTF8_BOM], response.streaming_content)
        return response

    return wrapper
