"""events.pg_arrays: the store statements' arrays are psycopg's own bytes, only built faster."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.adapt import PyFormat, Transformer

from events.pg_arrays import DateArray, TextArray, TimestampArray

PROPERTY_SETTINGS = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What PostgreSQL can store: no NUL in text, no lone surrogate (not encodable as UTF-8).
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=12))])
moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets)
days = st.dates(min_value=date(1, 1, 1))
cases = st.one_of(
    st.lists(texts, min_size=1, max_size=30).map(lambda values: (values, TextArray)),
    st.lists(moments, min_size=1, max_size=30).map(lambda values: (values, TimestampArray)),
    st.lists(days, min_size=1, max_size=30).map(lambda values: (values, DateArray)),
)


def dumped(value) -> bytes:
    return bytes(Transformer().dump_sequence([value], [PyFormat.BINARY])[0])


@PROPERTY_SETTINGS
@given(case=cases)
def test_each_array_is_byte_for_byte_what_psycopg_sends(case) -> None:
    # Not empty: psycopg sends an empty list as untyped text ('{}'); the PostgreSQL test reads ours.
    values, array = case
    assert dumped(array(values)) == dumped(values)


@pytest.mark.parametrize(
    ("array", "bad"),
    [
        (TextArray, ["ok", None]),
        (TimestampArray, [datetime(2026, 1, 1)]),
        (DateArray, ["2026-01-01"]),
        (DateArray, [date(2026, 1, 1), datetime(2026, 1, 1, 23, tzinfo=timezone(-timedelta(hours=5)))]),
    ],
    ids=["None", "naive datetime", "not a date", "a datetime among dates"],
)
def test_a_value_of_the_wrong_kind_raises_rather_than_being_stored(array, bad) -> None:
    with pytest.raises(TypeError):
        dumped(array(bad))


def test_a_string_that_cannot_be_encoded_raises() -> None:
    with pytest.raises(UnicodeEncodeError):
        dumped(TextArray(["\ud800"]))


def test_the_dumpers_are_registered_when_django_starts_before_any_connection_opens() -> None:
    script = (
        "import django, sys; django.setup();"
        "import psycopg; from psycopg.adapt import PyFormat;"
        "arrays = sys.modules['events.pg_arrays'];"
        "print(psycopg.adapters.get_dumper(arrays.TextArray, PyFormat.BINARY).__module__)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "engagement_site.settings"}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "events.pg_arrays"


@pytest.mark.django_db
def test_django_connections_use_these_dumpers_and_postgresql_reads_the_same_values(postgres) -> None:
    connection.ensure_connection()
    values = {
        "text[]": (TextArray, ["a", "é", "🙂", "", "with, comma", '"quoted"']),
        "timestamptz[]": (TimestampArray, [datetime(2026, 12, 2, 7, 31, 55, 123456, tzinfo=UTC), datetime.now(UTC)]),
        "date[]": (DateArray, [date(2026, 12, 2), date(1, 1, 1), date(9999, 12, 31)]),
    }
    with psycopg.Cursor(connection.connection) as cursor:
        for pg_type, (array, items) in values.items():
            dumper = cursor.adapters.get_dumper(array, PyFormat.BINARY)
            assert dumper.__module__ == "events.pg_arrays", pg_type
            cursor.execute(f"SELECT %b::{pg_type}, cardinality(%b::{pg_type})", [array(items), array([])])
            assert cursor.fetchone() == (items, 0)
