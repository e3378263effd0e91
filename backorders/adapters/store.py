"""The DuckDB store: opening the file, migrations, and running the statements under sql/."""

from __future__ import annotations

import contextlib
import functools
import re
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb

from backorders.settings import MEMORY_SIZE

SQL_DIR = Path(__file__).resolve().parent.parent.parent / "sql"


class StoreError(RuntimeError):
    """The store cannot be used: locked by another process, corrupt, or newer than this code."""


class DatabaseDamaged(StoreError):
    """A block of the file fails its checksum (or the file cannot be read as DuckDB's)."""

    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(
            f"database damaged: restore from backup (see docs/operations.md, 'Backup and "
            f"restore'): {path}: {detail}"
        )


class StoreBusy(StoreError):
    """Another process has the file open for writing (DuckDB's own lock)."""


# DuckDB 2.0 verifies a block's checksum when it reads the block from disk and raises a
# plain duckdb.Error "Corrupt database file: computed checksum ... does not match stored
# checksum ... in block at location N" (measured: docs/operations.md)
_DAMAGE_MARKERS = ("corrupt database file", "checksum")


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
    if path.is_dir():
        raise StoreError(f"--db {path} is a directory, not a DuckDB file")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        # DuckDB allows one writer process per file; say so plainly.
        if "lock" in first.lower():
            raise StoreBusy(
                f"{path} is in use by another process (DuckDB allows one writer at a time); "
                "wait for the running cycle to finish"
            ) from None
        if "not a valid DuckDB database" in first:
            raise StoreError(f"--db {path} is not a DuckDB database file") from None
        if any(m in first.lower() for m in _DAMAGE_MARKERS):
            raise DatabaseDamaged(path, first) from None
        raise StoreError(f"cannot open {path}: {first}") from None
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


def check_integrity(con: duckdb.DuckDBPyConnection, path: Path | str) -> int:
    """Read every block of every table (checksums verified); DatabaseDamaged if one fails.

    A `count(*)` reads metadata only and a scan of some columns only their blocks, so
    each table is read through a hash of every column. Indexes are not read (DuckDB
    rebuilds nothing from them here; a damaged index shows when it is used). Return the
    number of tables read.
    """
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = current_database() and not temporary order by all"
    ).fetchall()
    for schema, table in tables:
        quoted = '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'
        try:
            con.execute(f"select sum(hash(columns(*))) from {quoted}").fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            if any(m in first.lower() for m in _DAMAGE_MARKERS):
                raise DatabaseDamaged(path, f"table {table}: {first}") from None
            raise
    return len(tables)


# connections whose statement may be cut when a stop is requested (store.interruptible)
_interruptible: set[duckdb.DuckDBPyConnection] = set()


@contextlib.contextmanager
def interruptible(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Let a stop request cut the statement running on `con` (its transaction rolls back).

    Only for blocks whose work is all in transactions and that never read a DuckDB error
    as bad data: the cut statement raises, the block's transaction rolls back, and the
    block ends with interrupt.Interrupted.
    """
    from backorders import interrupt

    interrupt.check()
    _interruptible.add(con)
    try:
        yield con
    except duckdb.InterruptException:
        if interrupt.requested():  # cut by the stop: say that, not DuckDB's "Interrupted!"
            raise interrupt.Interrupted(interrupt.signum() or signal.SIGTERM) from None
        raise
    finally:
        _interruptible.discard(con)


def interrupt_running() -> None:
    """Cut the statements of every interruptible block (called by the stop handler)."""
    for con in list(_interruptible):
        with contextlib.suppress(duckdb.Error):
            con.interrupt()


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
