"""The one error body of every JSON API: `{"code", "message", "field"}`.

The tracking API (/v1/, Segment's wire) and the read API (/api/v1/) answer
errors with the same flat object: `code` (a stable machine word), `message`
(for people) and `field` (the parameter or message field at fault, or null).
It is the shape Segment's own server uses, so Segment clients keep working:
they act on the status code, and analytics-python 2.3.x also reads `code` and
`message` from the top level (it fails without `code`). The OpenAPI schema
names it once, as the `Error` component (see docs/api.md).
"""

ERROR_COMPONENT = "Error"

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "A stable machine word, e.g. invalid, not_found, rate_limited."},
        "message": {"type": "string", "description": "What went wrong, for people."},
        "field": {"type": "string", "nullable": True, "description": "The parameter or field at fault, or null."},
    },
    "required": ["code", "message", "field"],
}


def error_body(code: str, message: str, field: str | None = None) -> dict:
    return {"code": code, "message": message, "field": field}
