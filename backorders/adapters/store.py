"""The DuckDB store: opening the file, migrations, and running the statements under sql/."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb

from backorders.settings import MEMORY_SIZE

SQL_DIR = Path(__file__).resolve().parent.parent.parent / "sql"


class StoreError(RuntimeError):
    """The store cannot be used: locked by another process, corrupt, or newer than this code."""


@functools.cache
def sql(name: str) -> str:
    """The text of sql/<name>.sql (cached)."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


# DuckDB's own default is 80% of RAM; the allocation at 10M lines would take 12 GB.
DEFAULT_MEMORY_LIMIT = "3GB"
_MEMORY_RE = re.compile(MEMORY_SIZE)


def _migrations() -> list[tuple[int, Path]]:
    found = []
    for p in sorted((SQL_DIR / "migrations").glob("*.sql")):
        m = re.match(r"(\d+)_", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return found


def connect(
    db: Path | str, *, read_only: bool = False, memory_limit: str = DEFAULT_MEMORY_LIMIT
) -> duckdb.DuckDBPyConnection:
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
    if memory_limit:
        # beyond it DuckDB spills to <db>.tmp: a 10M-line run stays within ~4 GB
        if not _MEMORY_RE.fullmatch(memory_limit):
            raise StoreError(f"memory_limit {memory_limit!r} is not a size like '3GB' or '512MB'")
        con.execute(f"set memory_limit = '{memory_limit}'")
    # the progress bar would print into logs and command output
    con.execute("set enable_progress_bar = false")
    # DuckDB 2.0's DICT_FSST string compression costs 2.5x the CPU when writing (3M rows
    # of ids: 4.7 s vs 1.9 s) and line_status/allocations are rewritten every run. The
    # price is disk: without it DuckDB 2.0 stores such strings uncompressed (10M ids:
    # 149 MB instead of 43 MB), a 10M-line database is 2-3 GB (docs/performance.md).
    con.execute("set disabled_compression_methods = 'dict_fsst'")
    if not read_only:
        try:
            migrate(con)
        except BaseException:
            con.close()  # release the file: the caller gets no connection to close
            raise
    return con


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply pending migrations under sql/migrations in order; return the schema version."""
    con.execute(
        "create table if not exists schema_migrations "
        "(version integer primary key, name varchar not null, applied_at timestamptz not null)"
    )
    applied = {int(v) for (v,) in con.execute("select version from schema_migrations").fetchall()}
    current = max(applied, default=0)
    known = _migrations()
    if known and current > known[-1][0]:
        raise StoreError(
            f"the database has schema version {current}, newer than this code knows "
            f"({known[-1][0]}): upgrade backorders"
        )
    # every known migration not applied yet, in order (a lower number that arrived later,
    # from a parallel branch, is applied too)
    for version, path in known:
        if version in applied:
            continue
        try:
            with transaction(con):
                con.execute(path.read_text(encoding="utf-8"))
                con.execute(
                    "insert into schema_migrations values ($v, $n, now())",
                    {"v": version, "n": path.name},
                )
        except duckdb.Error as exc:
            # rolled back whole: the database is as it was before this migration
            raise StoreError(
                f"migration {path.name} failed, the database is unchanged at schema version "
                f"{current}: {str(exc).splitlines()[0]}"
            ) from exc
        current = max(current, version)
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
