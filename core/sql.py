"""SQL dialect helpers for the raw queries that run on both SQLite and PostgreSQL.

Pure plumbing, no models: the one place for the date parameter, the UUID a raw
row gives back, the vendor test and the JSON trait expression.
"""

from __future__ import annotations

import re
import uuid
from datetime import date

from django.db import connection

# Trait names end up in a JSON path: only these characters, and always as a parameter.
TRAIT_KEY = re.compile(r"^[A-Za-z0-9_\- ]{1,64}$")


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def sql_date(value: date):
    """A date as a raw-SQL parameter (SQLite stores ISO text)."""
    return connection.ops.adapt_datefield_value(value)


def as_uuid(value) -> uuid.UUID | None:
    """Raw SQL gives SQLite's 32-hex text or PostgreSQL's UUID: one type for templates and reverse()."""
    return None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def fetch_all(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def trait_sql(alias: str, key: str) -> tuple[str, list]:
    """The text value of a top-level JSON trait (PostgreSQL ->>, SQLite json_extract), and its parameter."""
    if not TRAIT_KEY.match(key):
        raise ValueError("Trait names are letters, digits, spaces, '_' and '-'.")
    if is_postgresql():
        return f"({alias}.traits ->> %s)", [key]
    return f"CAST(json_extract({alias}.traits, %s) AS TEXT)", [f'$."{key}"']
