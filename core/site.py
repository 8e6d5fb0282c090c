"""The site's own address, for links that leave the page: snippets, share links, emails.

`SITE_URL` wins when it is set (required in production). Otherwise a link
follows the address the request came in on (scheme, host and port, checked
against ALLOWED_HOSTS by `request.get_host()`), so `make run PORT=8107` hands
out :8107 links. Work done without a request of its own — a Celery task on a
worker, a management command — uses `SITE_URL_FALLBACK`, which the Makefile
sets to the runserver address (`http://$(HOST):$(PORT)`). In the embedded
default tasks run eagerly inside the request, so they see its address too.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.conf import settings

_request_site: ContextVar[str | None] = ContextVar("request_site", default=None)


def site_url(request=None) -> str:
    """The absolute base address (no trailing slash) links on this site are built on."""
    if settings.SITE_URL:
        return settings.SITE_URL.rstrip("/")
    if request is not None:
        return _from_request(request)
    return _request_site.get() or settings.SITE_URL_FALLBACK.rstrip("/")


def absolute(path: str, request=None) -> str:
    return site_url(request) + path


def _from_request(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


class SiteURLMiddleware:
    """Remember the request's address for the code it calls (services, eager tasks, emails)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.SITE_URL:
            return self.get_response(request)
        token = _request_site.set(_from_request(request))
        try:
            return self.get_response(request)
        finally:
            _request_site.reset(token)
