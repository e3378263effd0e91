"""Run the Great Expectations suites of expectations/ on DuckDB query results.

GX 1.x has no DuckDB data source (its SQL source over duckdb-engine returns empty
results), so each batch is a pandas frame from DuckDB. A check that raised an
exception is reported as broken, never read as bad data. GX is imported lazily:
it costs several seconds.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import duckdb

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


_context: Any = None


def _gx() -> Any:
    global _context
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


def run_suite(con: duckdb.DuckDBPyConnection, name: str, run_id: str) -> SuiteResult:
    """Run one suite module of expectations/ against its query for this run."""
    mod = importlib.import_module(f"expectations.{name}")
    query: str = mod.QUERY
    params = {"run_id": run_id} if "$run_id" in query else {}
    df = con.execute(query, params).df()
    if df.empty:
        return SuiteResult(mod.SUITE, mod.CRITICAL, True, 0, 0)
    gx, ctx = _gx()
    suite_name = f"{mod.SUITE}-{run_id}"
    source = ctx.data_sources.add_or_update_pandas(f"src-{suite_name}")
    asset = source.add_dataframe_asset(f"asset-{suite_name}")
    batch_def = asset.add_batch_definition_whole_dataframe(f"batch-{suite_name}")
    suite = gx.ExpectationSuite(name=suite_name)
    for exp in mod.expectations(gx):
        suite.add_expectation(exp)
    suite = ctx.suites.add_or_update(suite)
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"vd-{suite_name}", data=batch_def, suite=suite)
    )
    result = vd.run(batch_parameters={"dataframe": df})
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
    return SuiteResult(mod.SUITE, mod.CRITICAL, not failed, len(df), len(result.results), failed)


def run_suites(
    con: duckdb.DuckDBPyConnection, names: tuple[str, ...], run_id: str
) -> list[SuiteResult]:
    """Run several suites, store each result in validation_results, and return them."""
    results = [run_suite(con, n, run_id) for n in names]
    for r in results:
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
