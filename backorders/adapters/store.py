"""The DuckDB store: opening the file, migrations, and running the statements under sql/."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parent.parent.parent / "sql"


class StoreError(RuntimeError):
    """The store cannot be used: locked by another process, corrupt, or newer than this code."""


@functools.cache
def sql(name: str) -> str:
    """The text of sql/<name>.sql (cached)."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def _migrations() -> list[tuple[int, Path]]:
    found = []
    for p in sorted((SQL_DIR / "migrations").glob("*.sql")):
        m = re.match(r"(\d+)_", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return found


def connect(db: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, creating and migrating it when writable."""
    path = Path(db)
    if read_only and not path.exists():
        raise StoreError(f"no database at {path}: run `backorders run` or `backorders demo` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        # DuckDB allows one writer process per file; say so plainly.
        if "lock" in str(exc).lower():
            raise StoreError(
                f"{path} is in use by another process (DuckDB allows one writer at a time); "
                "wait for the running cycle to finish"
            ) from exc
        raise StoreError(f"cannot open {path}: {exc}") from exc
    con.execute("set TimeZone = 'UTC'")
    # the progress bar would print into logs and command output
    con.execute("set enable_progress_bar = false")
    if not read_only:
        migrate(con)
    return con


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply pending migrations under sql/migrations in order; return the schema version."""
    con.execute(
        "create table if not exists schema_migrations "
        "(version integer primary key, name varchar not null, applied_at timestamptz not null)"
    )
    row = con.execute("select coalesce(max(version), 0) from schema_migrations").fetchone()
    current = int(row[0]) if row else 0
    known = _migrations()
    if known and current > known[-1][0]:
        raise StoreError(
            f"the database has schema version {current}, newer than this code knows "
            f"({known[-1][0]}): upgrade backorders"
        )
    for version, path in known:
        if version <= current:
            continue
        with transaction(con):
            con.execute(path.read_text(encoding="utf-8"))
            con.execute(
                "insert into schema_migrations values ($v, $n, now())",
                {"v": version, "n": path.name},
            )
        current = version
    return current


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: all of it commits, or none of it."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    else:
        con.execute("commit")


def run(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Execute sql/<name>.sql with named parameters bound (never formatted in)."""
    return con.execute(sql(name), dict(params or {}))


def scalar(
    con: duckdb.DuckDBPyConnection, query: str, params: Mapping[str, Any] | None = None
) -> Any:
    """The first column of the first row of a query (None when there is no row)."""
    row = con.execute(query, dict(params or {})).fetchone()
    return row[0] if row else None
