"""Set-based reads behind the dashboard and the insight pages, one module per insight.

Every function aggregates in the database (one or a few SQL statements) and
returns small lists and dicts: nothing here loops over events, end users or
accounts in Python. The SQL runs on SQLite (embedded default) and PostgreSQL;
the only vendor branches are the date-bucket and JSON-trait expressions
(`core.sql`, `common.period_sql`).
"""
