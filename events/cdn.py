"""analytics.js from this server: the files Segment's CDN would serve, from the pinned npm package.

Segment's standard snippet with `analytics._cdn` set to this host (and the
snippet's `cdn.segment.com` replaced by it) loads
`<cdn>/analytics.js/v1/<writeKey>/analytics.min.js`, which then loads its
code-split bundles from `<cdn>/analytics-next/bundles/` (query-string
identify, trackLink/trackForm, the schema filter...) and its settings from
`<cdn>/v1/projects/<writeKey>/settings` (events.api.project_settings).

The files are @segment/analytics-next's standalone build (`dist/umd`), installed
by `make install` (`npm ci`, package-lock.json) into node_modules/, never
copied into the repository: `settings.ANALYTICS_NEXT_DIST`. Only those names
are served (a bundle name is `<chunk>.bundle.<hash>.js`), precompressed when
the browser takes gzip; the bundles carry their content hash, so they are
cacheable for a year, analytics.min.js for 5 minutes (an upgrade keeps its path).
"""

import logging
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

# analytics.min.js is the standalone build; its source map is named after the build file.
LOADER_FILES = {"analytics.min.js": "standalone.js", "standalone.js.map": "standalone.js.map"}
LOADER_MAX_AGE = 300
BUNDLE_MAX_AGE = 365 * 24 * 3600


def dist_dir() -> Path:
    return Path(settings.ANALYTICS_NEXT_DIST)


def installed() -> bool:
    return (dist_dir() / "standalone.js").is_file()


@require_safe
def loader(request, write_key: str, name: str):
    """`analytics.min.js` for any write key: the same file (the settings fetch checks the key)."""
    return _serve(request, LOADER_FILES[name], LOADER_MAX_AGE)


@require_safe
def bundle(request, name: str):
    return _serve(request, name, BUNDLE_MAX_AGE, immutable=True)


def _serve(request, filename: str, max_age: int, immutable: bool = False):
    path = dist_dir() / filename
    if not path.is_file():
        if not installed():
            log.warning("analytics.js asked for but %s is not installed (npm ci, `make install`)", dist_dir())
            return HttpResponse(
                "analytics.js is not installed on this server: run `make install` with Node.js and npm "
                "(it installs @segment/analytics-next from package-lock.json). See docs/ingestion.md.",
                status=404, content_type="text/plain; charset=utf-8")
        return HttpResponse("No such analytics.js file.", status=404, content_type="text/plain; charset=utf-8")
    content_type = "application/json" if filename.endswith(".map") else "text/javascript; charset=utf-8"
    gzipped = path.with_name(path.name + ".gz")
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "") and gzipped.is_file()
    response = FileResponse(open(gzipped if use_gzip else path, "rb"), content_type=content_type)
    if use_gzip:
        response["Content-Encoding"] = "gzip"
    patch_vary_headers(response, ["Accept-Encoding"])
    patch_cache_control(response, public=True, max_age=max_age, **({"immutable": True} if immutable else {}))
    # Loaded from customers' sites: a `crossorigin` script tag (or a source map) needs CORS.
    response["Access-Control-Allow-Origin"] = "*"
    return response
