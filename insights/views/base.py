"""One view per insight: its page and its .csv from one form and one query (the page draws the chart)."""

from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.scoping import tenant_view
from core.csv_export import csv_download, csv_response

SUBJECT_CHOICES = [("users", "End users"), ("accounts", "Customer accounts")]
OUTPUTS = ("page", "csv")


def bad_request(form) -> HttpResponse:
    text = " ".join(f"{field}: {error}" for field, errors in form.errors.items() for error in errors)
    return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")


class InsightView:
    """An insight's form (query string over `form_class.DEFAULTS`) and its renderings.

    A subclass sets `form_class` and `template`, writes its query, and gives
    `context` (the page, its chart specs included) and/or `csv` (filename, header,
    rows). An invalid query string is the page with the form's errors (400), or a
    plain-text 400 for the .csv.
    """

    form_class: type[forms.Form]
    template: str

    def bind(self, request) -> tuple[forms.Form, dict | None]:
        data = {**self.form_class.DEFAULTS, **request.GET.dict()}
        form = self.form_class(data)
        return form, (form.cleaned_data if form.is_valid() else None)

    # Hooks: a subclass defines the outputs it has URLs for (views() maps each URL to one of them).
    def context(self, request, form, data: dict) -> dict:
        raise NotImplementedError(f"{type(self).__name__} has no page")

    def csv(self, request, data: dict) -> tuple[str, list[str], Iterable]:
        raise NotImplementedError(f"{type(self).__name__} has no CSV")

    def serve(self, request, output: str) -> HttpResponse:
        form, data = self.bind(request)
        if output == "page":
            if data is None:
                return render(request, self.template, {"form": form}, status=400)
            return render(request, self.template, self.context(request, form, data))
        if data is None:
            return bad_request(form)
        # Small CSVs (tens of rows: aggregates, never raw events), formula-safe.
        return csv_response(*self.csv(request, data))

    @classmethod
    def views(cls, *outputs: str):
        """The URL callbacks, one per output (default: page, csv), each a tenant-scoped viewer GET.

        The .csv also takes a read key instead of a login, and `?bom=1`, like the
        score exports (docs/api.md, "CSV exports with a read key").
        """

        def make(output: str):
            def view(request):
                return cls().serve(request, output)

            view.__name__ = view.__qualname__ = f"{cls.__name__}.{output}"
            if output == "csv":
                return tenant_view(read_key=True)(require_GET(csv_download(view)))
            return tenant_view()(require_GET(view))

        # An output without its hook is refused when the URLconf loads, never on a request.
        hooks = {"page": "context", "csv": "csv"}
        for output in outputs or OUTPUTS:
            if getattr(cls, hooks[output]) is getattr(InsightView, hooks[output]):
                raise TypeError(f"{cls.__name__} serves {output!r} but does not define {hooks[output]}()")
        return tuple(make(output) for output in outputs or OUTPUTS)
