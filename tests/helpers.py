"""Assertions every test folder shares."""

_UNCHECKED = object()


def assert_error(response, status, code=None, message=None, field=_UNCHECKED) -> dict:
    """The response is an API error: `status`, JSON, a non-empty message, and what the caller names.

    One shape for both APIs (core.api_errors): `{"code", "message", "field"}`, the
    tracking API under /v1/ also carrying CORS headers on every answer, errors
    included. `message` is a part of the message; `field` is checked when given
    (None included). Returns the error.
    """
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()
    assert set(error) == {"code", "message", "field"}, error
    if response.wsgi_request.path.startswith("/v1/"):
        assert response["Access-Control-Allow-Origin"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if message is not None:
        assert message in error["message"], error
    if field is not _UNCHECKED:
        assert error.get("field") == field, error
    return error


def chart_spec(response, chart_id: str) -> dict:
    """The spec a page hands static/js/charts.js for `<canvas data-chart=chart_id>` (its json_script)."""
    import json
    import re

    html = response.content.decode()
    assert f'data-chart="{chart_id}"' in html, f"no chart {chart_id} on the page"
    match = re.search(rf'<script id="{re.escape(chart_id)}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no spec for {chart_id}"
    return json.loads(match.group(1))
