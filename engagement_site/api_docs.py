"""The public, human-readable API reference at /api/docs/: server-rendered, no CDN, no JS.

The read API part comes from the same OpenAPI schema as /api/schema/ (drf-spectacular),
so the page cannot drift from the code; the Segment tracking endpoints are plain
Django views and are described from `events.reference` (the schema has them
too, added by `events.openapi`, but they have their own section here).
"""

from functools import cache

from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.generators import SchemaGenerator

from core.site import site_url
from events import openapi, wire
from events.reference import ENDPOINTS, ERROR_CODES

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@cache
def _schema() -> dict:
    # Generating walks every URL and serializer: do it once per process.
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict) -> list[dict]:
    operations = []
    for path, item in sorted(schema.get("paths", {}).items()):
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None or openapi.TAG in operation.get("tags", []):
                continue
            operations.append(
                {
                    "path": path,
                    "method": method.upper(),
                    "summary": operation.get("summary", ""),
                    "operation_id": operation.get("operationId", ""),
                    "description": operation.get("description", ""),
                    "tags": ", ".join(operation.get("tags", [])),
                    "parameters": [
                        {
                            "name": p.get("name"),
                            "where": p.get("in"),
                            "required": p.get("required", False),
                            "description": p.get("description", ""),
                        }
                        for p in operation.get("parameters", [])
                    ],
                    "responses": sorted(operation.get("responses", {})),
                    "auth": [name for requirement in operation.get("security", []) for name in requirement],
                }
            )
    return operations


@require_GET
def api_docs(request):
    schema = _schema()
    context = {
        "info": schema.get("info", {}),
        "operations": _operations(schema),
        "security_schemes": {
            name: scheme
            for name, scheme in schema.get("components", {}).get("securitySchemes", {}).items()
            if name != openapi.SECURITY_SCHEME
        },
        "site_url": site_url(request),
        "endpoints": ENDPOINTS,
        "error_codes": ERROR_CODES,
        "max_message_kb": wire.MAX_MESSAGE_BYTES // 1024,
        "max_request_bytes": f"{wire.MAX_REQUEST_BYTES:,}",
        "max_batch": f"{wire.MAX_BATCH_MESSAGES:,}",
        "max_id_len": wire.MAX_ID_LEN,
        "min_year": wire.MIN_TIMESTAMP.year,
        "max_year": wire.MAX_TIMESTAMP.year - 1,
    }
    return render(request, "api_docs.html", context)
