"""A fresh schema on a PostgreSQL server for one run (benchmarks, the rules'
evaluation, tests): created, its URL given (the server's, with `search_path` set
to it), dropped with everything in it afterwards. `fresh_store_url`: such a schema
or a new SQLite file, for a run that takes either alert store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


@contextmanager
def fresh_schema(base_url: str, prefix: str = "lordi_") -> Iterator[str]:
    """The URL of a new schema named `prefix` + a random suffix."""
    schema = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def fresh_store_url(kind: str, sqlite_file: Path, pg_url: str, prefix: str) -> Iterator[str]:
    """A fresh alert store's URL: `sqlite_file` (kind "sqlite"), or a new schema named
    `prefix` + a random suffix on the PostgreSQL server `pg_url`."""
    if kind == "sqlite":
        yield f"sqlite:///{sqlite_file}"
        return
    with fresh_schema(pg_url, prefix) as url:
        yield url
