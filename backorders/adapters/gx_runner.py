"""Run the Great Expectations suites of expectations/ on DuckDB query results.

GX 1.x has no DuckDB data source (its SQL source over duckdb-engine returns empty
results), so each batch is a pandas frame from DuckDB. A check that raised an
exception is reported as broken, never read as bad data. GX is imported lazily:
it costs several seconds, so `prewarm()` starts the import in a background thread
while the ingest (DuckDB, which releases the GIL) runs.

Every expectation of a suite runs on every row of its batch (no sampling). What
makes 10M rows affordable:

- a batch holds only the columns the suite's expectations name (the query is
  wrapped in a projection; DuckDB pushes it down), fetched as Arrow and wrapped as
  a pandas frame without a Python object per value: strings stay Arrow-backed
  (DuckDB's own `.df()` spends ~0.35 us a string building them: 3.4 s for 10M ids),
  decimals become float64 as `.df()` makes them, nullable integers and booleans
  become pandas' nullable dtypes, dates datetime64;
- GX's batch *fingerprint* is switched off: for every pandas batch under 1 GB, GX
  1.24 hashes the whole frame (`hash_pandas_object`, ~0.6 s per 1M rows, more than
  the expectations themselves) only to label the batch in its metadata. No
  expectation reads it; the batch is identified here by suite and run instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)


class ValidationBroken(RuntimeError):
    """A check could not run (an exception inside GX): the data was not judged."""


@dataclass
class SuiteResult:
    """One suite's outcome on one batch."""

    suite: str
    critical: bool
    success: bool
    rows: int
    evaluated: int
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # a failed suite with a VIOLATIONS query: how many rows break it, and the first few
    violation_count: int = 0
    violations: list[dict[str, Any]] = field(default_factory=list)

    def describe_violations(self) -> str:
        """The rows that broke the suite, in words (empty when the suite names none)."""
        if not self.violation_count:
            return ""
        shown = "; ".join(str(v.get("broken")) for v in self.violations)
        more = self.violation_count - len(self.violations)
        return (
            f"{self.violation_count} row(s) break suite {self.suite}: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + " (all of them: table validation_results)"
        )


_context: Any = None
_prewarm: threading.Thread | None = None


def _import_gx() -> None:
    import great_expectations  # noqa: F401
    from great_expectations.execution_engine import pandas_execution_engine

    # The batch fingerprint (a hash of the whole frame) labels metadata only.
    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


def prewarm() -> None:
    """Start importing GX in a background thread (idempotent); _gx() waits for it."""
    global _prewarm
    if _prewarm is None:
        _prewarm = threading.Thread(target=_import_gx, name="gx-import", daemon=True)
        _prewarm.start()


def _gx() -> Any:
    global _context
    if _prewarm is not None:
        _prewarm.join()
    _import_gx()
    import great_expectations as gx

    if _context is None:
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        _context = gx.get_context(mode="ephemeral")
        try:
            _context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(
                globally=False
            )
        except Exception:
            log.debug("could not switch off GX progress bars")
    return gx, _context


def _columns(expectations: list[Any]) -> list[str] | None:
    """The columns the expectations read, in order; None when that cannot be told.

    Only column, column-pair and multicolumn expectations without a row condition
    can be told: a table-level expectation (row count, the set of columns) or a
    condition may depend on any column, and then the batch keeps them all.
    """
    out: list[str] = []
    for exp in expectations:
        fields = dict(exp.configuration.kwargs)
        if fields.get("row_condition"):
            return None  # a condition may name any column
        named = [
            col
            for name, value in fields.items()
            if name == "column" or name.startswith("column_")
            for col in (value if isinstance(value, list) else [value])
        ]
        if not named or not all(isinstance(col, str) for col in named):
            return None  # a table-level expectation
        out.extend(col for col in named if col not in out)
    return out or None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _frame(table: pa.Table) -> pd.DataFrame:
    """A pandas frame of an Arrow table, typed as DuckDB's .df() types it, without copies."""
    # imported here: pandas costs seconds to import, and only a validation needs it
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pd.StringDtype("pyarrow", na_value=np.nan)  # what DuckDB's .df() gives for VARCHAR
    nullable: dict[pa.DataType, Any] = {
        pa.bool_(): pd.BooleanDtype(),
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
    }
    columns: dict[str, Any] = {}
    for field_, col in zip(table.schema, table.columns, strict=True):
        t = field_.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            columns[field_.name] = pd.array(col, dtype=text)
        elif pa.types.is_decimal(t):
            columns[field_.name] = pc.cast(col, pa.float64()).to_numpy()
        elif t in nullable and col.null_count:
            columns[field_.name] = col.to_pandas(types_mapper={t: nullable[t]}.get).array
        else:
            # .array, not .to_numpy(): a tz-aware timestamp would become Python objects
            columns[field_.name] = col.to_pandas(date_as_object=False).array
    return pd.DataFrame(columns, copy=False)


@dataclass
class _Batch:
    """One suite's batch, fetched (the DuckDB part) and ready to be checked (the GX part)."""

    module: Any
    expectations: list[Any]
    frame: pd.DataFrame
    fetch_seconds: float


# DuckDB's share of the validation: it only scans tables into Arrow batches, which
# live outside its limit; a larger limit only lets it cache table blocks (1 GB of
# them after reading 10M order lines) on top of the batches.
VALIDATION_DUCKDB_MEMORY = 512 * 2**20
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _size(text: str) -> float:
    number, _, unit = text.strip().partition(" ")
    if not unit:
        digits = number.rstrip("KMGTIBkmgtib")
        number, unit = digits, number[len(digits) :]
    return float(number) * _UNITS.get(unit.strip().upper(), 1)


def limit_duckdb_memory(con: duckdb.DuckDBPyConnection) -> None:
    """Lower DuckDB's memory limit to VALIDATION_DUCKDB_MEMORY (never raise it)."""
    current = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    if _size(str(current)) > VALIDATION_DUCKDB_MEMORY:
        con.execute(f"set memory_limit = '{VALIDATION_DUCKDB_MEMORY // 2**20}MiB'")


def _release_memory() -> None:
    """Give the memory of a checked batch back to the system, so batches do not pile up.

    Arrow's allocator (mimalloc) and glibc's keep freed pages for reuse; after a 10M-row
    batch that is gigabytes the next batch would add to, raising the peak.
    """
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _has_rows(con: duckdb.DuckDBPyConnection, name: str, run_id: str) -> bool:
    mod = importlib.import_module(f"expectations.{name}")
    params = {"run_id": run_id} if "$run_id" in mod.QUERY else {}
    # fetchall: DuckDB 2.0 refuses new work on a connection with a result half read
    return bool(con.execute(f"select 1 from ({mod.QUERY}) as batch limit 1", params).fetchall())


def _fetch(con: duckdb.DuckDBPyConnection, name: str, run_id: str) -> _Batch:
    """Query a suite's batch: only the columns its expectations read, as a pandas frame."""
    started = time.perf_counter()
    gx, _ = _gx()
    mod = importlib.import_module(f"expectations.{name}")
    query: str = mod.QUERY
    params = {"run_id": run_id} if "$run_id" in query else {}
    expectations = mod.expectations(gx)
    cols = _columns(expectations)
    described = {str(r[0]): str(r[1]) for r in con.execute(f"describe {query}", params).fetchall()}
    # decimals as double in DuckDB (as its .df() gives them): half the bytes of decimal128
    select = ", ".join(
        f"{_ident(c)}::double as {_ident(c)}" if described[c].startswith("DECIMAL") else _ident(c)
        for c in (cols if cols is not None else list(described))
    )
    table = con.sql(f"select {select} from ({query}) as batch", params=params).to_arrow_table()
    frame = _frame(table)
    del table
    return _Batch(mod, expectations, frame, time.perf_counter() - started)


def _check(batch: _Batch, run_id: str) -> SuiteResult:
    """Run the suite's expectations on its batch with GX (every row, every expectation)."""
    started = time.perf_counter()
    gx, ctx = _gx()
    mod, df = batch.module, batch.frame
    suite_name = f"{mod.SUITE}-{run_id}"
    source = ctx.data_sources.add_or_update_pandas(f"src-{suite_name}")
    asset = source.add_dataframe_asset(f"asset-{suite_name}")
    batch_def = asset.add_batch_definition_whole_dataframe(f"batch-{suite_name}")
    suite = gx.ExpectationSuite(name=suite_name)
    for exp in batch.expectations:
        suite.add_expectation(exp)
    suite = ctx.suites.add_or_update(suite)
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"vd-{suite_name}", data=batch_def, suite=suite)
    )
    try:
        result = vd.run(batch_parameters={"dataframe": df})
    finally:
        # the context would keep the data source, and through its execution engine
        # the batch: drop them so that each batch is freed once checked
        for delete in (
            lambda: ctx.validation_definitions.delete(f"vd-{suite_name}"),
            lambda: ctx.suites.delete(suite_name),
            lambda: ctx.data_sources.delete(f"src-{suite_name}"),
        ):
            try:
                delete()
            except Exception:
                log.debug("could not drop a GX object of suite %s", suite_name)
    failed, broken = [], []
    for r in result.results:
        cfg = r.expectation_config
        info = r.exception_info or {}
        raised = info.get("raised_exception") if isinstance(info, dict) else False
        if raised:
            broken.append(f"{cfg.type}({cfg.kwargs}): {info.get('exception_message')}")
        elif not r.success:
            res = r.result or {}
            failed.append(
                {
                    "expectation": cfg.type,
                    "kwargs": {k: v for k, v in cfg.kwargs.items() if k != "batch_id"},
                    "unexpected_count": res.get("unexpected_count"),
                    "partial_unexpected_list": [
                        str(v) for v in (res.get("partial_unexpected_list") or [])[:5]
                    ],
                }
            )
    if broken:
        raise ValidationBroken(f"suite {mod.SUITE}: check(s) could not run: " + "; ".join(broken))
    n, evaluated = len(df), len(result.results)
    batch.frame = df = result = None  # a batch can be large: free it before the next one
    return SuiteResult(
        mod.SUITE,
        mod.CRITICAL,
        not failed,
        n,
        evaluated,
        failed,
        round(batch.fetch_seconds + time.perf_counter() - started, 2),
    )


def run_suite(con: duckdb.DuckDBPyConnection, name: str, run_id: str) -> SuiteResult:
    """Run one suite module of expectations/ against its query for this run."""
    if not _has_rows(con, name, run_id):
        mod = importlib.import_module(f"expectations.{name}")
        return SuiteResult(mod.SUITE, mod.CRITICAL, True, 0, 0)
    result = _check(_fetch(con, name, run_id), run_id)
    _release_memory()
    return result


def _run_all(
    con: duckdb.DuckDBPyConnection, names: tuple[str, ...], run_id: str
) -> list[SuiteResult]:
    """Every suite, in order; the next batch is fetched while GX checks the current one.

    DuckDB works without the GIL and GX is mostly Python, so on two cores the two
    overlap. The connection is used by one thread at a time: the fetching thread
    alone while the main thread runs GX, which never touches it.
    """
    results: dict[str, SuiteResult] = {}
    todo = []
    for n in names:
        if _has_rows(con, n, run_id):
            todo.append(n)
        else:
            mod = importlib.import_module(f"expectations.{n}")
            results[n] = SuiteResult(mod.SUITE, mod.CRITICAL, True, 0, 0)
    if todo:
        _gx()  # import GX and make the context here, not in the fetching thread
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-fetch") as pool:
            ahead = pool.submit(_fetch, con, todo[0], run_id)
            for i, n in enumerate(todo):
                batch = ahead.result()
                if i + 1 < len(todo):
                    ahead = pool.submit(_fetch, con, todo[i + 1], run_id)
                try:
                    results[n] = _check(batch, run_id)
                except BaseException:
                    ahead.cancel()
                    ahead.exception()  # let the fetch finish before the connection is used
                    raise
                del batch
                _release_memory()
    return [results[n] for n in names]


def _violations(
    con: duckdb.DuckDBPyConnection, result: SuiteResult, name: str, run_id: str, limit: int
) -> None:
    """Name the rows that broke a failed suite: its module's VIOLATIONS query, over `batch`.

    An expectation's own result gives only sample values of one column; a person needs
    the keys (which sku, which location) and the figures, and how many rows there are.
    """
    mod = importlib.import_module(f"expectations.{name}")
    query = getattr(mod, "VIOLATIONS", None)
    if result.success or query is None:
        return
    sql = f"with batch as ({mod.QUERY}) {query}"
    params = {"run_id": run_id} if "$run_id" in sql else {}
    result.violation_count = int(
        con.execute(f"select count(*) from ({sql}) as v", params).fetchall()[0][0]
    )
    rel = con.execute(f"select * from ({sql}) as v limit $limit", params | {"limit": limit})
    cols = [d[0] for d in rel.description or ()]
    result.violations = [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]
    result.failed.append(
        {
            "expectation": "violations",
            "unexpected_count": result.violation_count,
            "rows": result.violations,
        }
    )


def run_suites(
    con: duckdb.DuckDBPyConnection,
    names: tuple[str, ...],
    run_id: str,
    *,
    failure_rows: int = 20,
) -> list[SuiteResult]:
    """Run several suites, store each result in validation_results, and return them.

    A failed suite whose module has a VIOLATIONS query names its first `failure_rows`
    offending rows, and their count, in its result and in validation_results.
    """
    results = _run_all(con, names, run_id)
    for name, r in zip(names, results, strict=True):
        _violations(con, r, name, run_id, failure_rows)
        con.execute(
            "insert into validation_results values ($run, $suite, $batch, $ok, $ev, $nf, $details::json)",
            {
                "run": run_id,
                "suite": r.suite,
                "batch": f"{r.rows} rows",
                "ok": r.success,
                "ev": r.evaluated,
                "nf": len(r.failed),
                "details": json.dumps(r.failed, default=str),
            },
        )
    return results
