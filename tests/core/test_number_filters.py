"""The one number format of every page (core/templatetags/engage.py), and the sidebar's place."""

from decimal import Decimal

import pytest
from django.template import engines

from core.templatetags.engage import nav_place_of, num, pct, share, signed, sub


@pytest.mark.parametrize(("value", "expected"), [
    (12345.0, "12,345"), (1234567, "1,234,567"), (12.34, "12.3"), (12.0, "12"), (0, "0"), (0.04, "0"),
    (-0.04, "0"), (-1234.56, "-1,234.6"), (Decimal("7.50"), "7.5"), (None, "—"), ("", "—"), ("n/a", "n/a"),
])
def test_num_has_separators_and_no_trailing_zero(value, expected):
    assert num(value) == expected


def test_num_takes_the_most_decimals():
    assert (num(3.14159, 2), num(2.5, 0), num(1234.5678, 0), num(0.0004, 4)) == ("3.14", "2", "1,235", "0.0004")


@pytest.mark.parametrize(("value", "expected"), [
    (60.0, "+60"), (-30.0, "-30"), (0, "0"), (0.01, "0"), (1234.5, "+1,234.5"), (None, "—"),
])
def test_signed(value, expected):
    assert signed(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (42.35, "42.4%"), (50, "50.0%"), (0, "0.0%"), (-0.01, "0.0%"), (100.0, "100.0%"), (1234.5, "1,234.5%"),
    (None, "—"), ("x", "—"),
])
def test_pct_always_one_decimal(value, expected):
    assert pct(value) == expected


def test_share_is_a_fraction_as_percent():
    assert (share(0.4235), share(0.3), share(None)) == ("42.4%", "30.0%", "—")


def test_sub():
    assert sub(10, 2.5) == Decimal("7.5") and sub(None, 1) is None


def test_the_filters_are_builtins_of_every_template():
    template = engines["django"].from_string("{{ a|num }} {{ b|pct }} {{ c|signed }} {{ d|num:0 }}")
    assert template.render({"a": 103184.0, "b": 59.43, "c": -81.2, "d": 973.4}) == "103,184 59.4% -81.2 973"


@pytest.mark.parametrize(("namespace", "name", "expected"), [
    ("", "tenant_home", ("home", "home")),
    ("insights", "onboarding", ("home", "home")),
    ("scoring", "user_detail", ("people", "users")),
    ("scoring", "accounts", ("people", "accounts")),
    ("scoring", "runs", ("scoring", "scoring")),
    ("insights", "growth", ("insights", "insights")),
    ("events", "import_detail", ("events", "imports")),
    ("surveys", "results", ("survey", "survey")),
    ("accounts", "api_keys", ("settings", "api_keys")),
    ("alerts", "rules", ("alerts", "alerts")),
    ("", "api_docs", ("", "")),
])
def test_nav_place(namespace, name, expected):
    assert tuple(nav_place_of(namespace, name).values()) == expected
