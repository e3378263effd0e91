"""The KPIs ops read, from the kpi_* views (migration 020): JSON-able tables and text."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb

# name: (the view, the columns shown, at most this many rows or None for all)
VIEWS: dict[str, tuple[str, tuple[str, ...], int | None]] = {
    "fill_rate": (
        "kpi_fill_rate",
        (
            "lines",
            "lines_filled",
            "line_fill_rate_pct",
            "units",
            "units_filled",
            "unit_fill_rate_pct",
        ),
        None,
    ),
    "backorder_aging": (
        "kpi_backorder_aging",
        ("bucket", "min_days", "max_days", "lines", "backordered_units", "unpromised_lines"),
        None,
    ),
    "promise_accuracy": (
        "kpi_promise_accuracy",
        (
            "shipped_lines",
            "on_time_lines",
            "on_time_pct",
            "late_lines",
            "avg_days_late",
            "max_days_late",
        ),
        None,
    ),
    "supplier_performance": (
        "kpi_supplier_performance",
        (
            "supplier_id",
            "received_lines",
            "on_time_lines",
            "on_time_pct",
            "avg_days_late",
            "avg_lead_time_days",
            "lead_time_lines",
            "open_lines",
            "overdue_lines",
        ),
        None,
    ),
    "top_backordered_skus": (
        "kpi_top_backordered_skus",
        (
            "rank",
            "sku",
            "name",
            "backordered_lines",
            "backordered_units",
            "unpromised_units",
            "open_demand_units",
        ),
        10,
    ),
}


class NoCommittedRun(LookupError):
    """No run has committed yet: there is nothing to measure."""


def _json_value(v: Any) -> Any:
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def kpi_tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """Every KPI as a list of row dicts (for create_table_artifact and JSON)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, (view, columns, limit) in VIEWS.items():
        query = f"select {', '.join(columns)} from {view}"  # names from VIEWS, not input
        if limit is not None:
            query += f" limit {int(limit)}"
        rows = con.execute(query).fetchall()
        tables[name] = [dict(zip(columns, map(_json_value, r), strict=True)) for r in rows]
    return tables


def compute_kpis(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The KPIs as of the last committed run, with that run; NoCommittedRun if none."""
    run = con.execute("select run_id, as_of from kpi_run").fetchone()
    if run is None:
        raise NoCommittedRun(
            "no committed run yet (no run has succeeded): run `backorders run` first"
        )
    allocated = con.execute(
        "select l.run_id, r.status from line_results_run as l left join runs as r using (run_id)"
    ).fetchone()
    out: dict[str, Any] = {"run_id": run[0], "as_of": _json_value(run[1])}
    if allocated is not None and allocated[0] != run[0]:
        # the last allocation was made by a later run that did not commit (it stopped
        # after allocating): line_status, hence aging and top skus, are that run's
        out["line_status_run"] = {"run_id": allocated[0], "status": allocated[1]}
    out.update(kpi_tables(con))
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v):,}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[str]:
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]

    # text left, numbers right (a column is numeric when any of its values is a number)
    numeric = [any(isinstance(r[c], int | float) for r in rows) for c in columns]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(list(columns)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells] or ["(none)"]
    return out


def kpis_text(kpis: dict[str, Any]) -> str:
    """The KPIs as aligned text tables, one per KPI, for a person to read."""
    out = [f"KPIs as of run {kpis['run_id']} ({kpis['as_of']})"]
    if "line_status_run" in kpis:
        other = kpis["line_status_run"]
        out.append(
            f"note: aging and top skus are from run {other['run_id']} ({other['status']}), "
            "which allocated after it"
        )
    for name, (_, columns, _) in VIEWS.items():
        out += ["", name.replace("_", " "), *_table(kpis[name], columns)]
    return "\n".join(out)
