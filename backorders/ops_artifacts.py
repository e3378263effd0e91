"""What ops see in the Prefect UI, built from small summaries (no Prefect import here).

The flow and tasks (tasks/artifacts.py) publish these under stable keys; this module only
reads the database and shapes rows, so it is tested without a Prefect API.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from backorders.kpis import kpi_tables

SUMMARY_KEY = "backorder-cycle-summary"
KPIS_KEY = "backorder-kpis"
AGING_KEY = "backorder-kpis-aging"
SUPPLIERS_KEY = "backorder-kpis-suppliers"
TOP_SKUS_KEY = "backorder-kpis-top-skus"
VALIDATION_KEY = "backorder-validation"
QUARANTINE_KEY = "backorder-quarantine"
PROGRESS_KEY = "backorder-progress"
REPLENISH_KEY = "backorder-replenishment"
# the advice rows the replenishment artifact shows at most (the table has them all)
REPLENISH_ROWS = 200
# the keys the run summary links to, in the order it lists them, with what each holds
LINKED = {
    KPIS_KEY: "KPIs: fill rate, promise accuracy",
    AGING_KEY: "backorder aging by age bucket",
    SUPPLIERS_KEY: "supplier on-time rate and lead time",
    TOP_SKUS_KEY: "top backordered skus",
    VALIDATION_KEY: "validation results per suite",
    QUARANTINE_KEY: "quarantined rows by feed and reason",
    REPLENISH_KEY: "replenishment advice: what to order",
    PROGRESS_KEY: "progress of the run",
}


def _pct(v: Any) -> str:
    return "-" if v is None else f"{float(v):.1f} %"


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v != int(v):
        return f"{v:,.2f}"
    return f"{int(v):,}"


def ui_cell(value: Any) -> Any:
    """A table cell as the Prefect UI should show it: it renders cells as markdown.

    A cell of exactly "-" drew a list bullet and one starting with ">" a blockquote bar
    (the aging bucket ">60"): write "none" and "over 60" instead; other values are kept.
    """
    if not isinstance(value, str):
        return value
    if value.strip() == "-":
        return "none"
    if m := re.fullmatch(r">\s*(\d[\d.,]*)(.*)", value):
        return f"over {m.group(1)}{m.group(2)}"
    return value


def ui_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every cell of a table artifact through `ui_cell`."""
    return [{k: ui_cell(v) for k, v in row.items()} for row in rows]


def kpi_artifacts(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """The KPI tables by artifact key: headline figures, aging, suppliers, top skus."""
    t = kpi_tables(con)
    fill = t["fill_rate"][0] if t["fill_rate"] else {}
    acc = t["promise_accuracy"][0] if t["promise_accuracy"] else {}
    headline = [
        {"kpi": kpi, "value": value, "detail": detail}
        for kpi, value, detail in (
            (
                "line fill rate",
                _pct(fill.get("line_fill_rate_pct")),
                f"{_num(fill.get('lines_filled'))} of {_num(fill.get('lines'))} lines "
                "filled from stock on their first promise",
            ),
            (
                "unit fill rate",
                _pct(fill.get("unit_fill_rate_pct")),
                f"{_num(fill.get('units_filled'))} of {_num(fill.get('units'))} units",
            ),
            (
                "promise accuracy",
                _pct(acc.get("on_time_pct")),
                f"{_num(acc.get('on_time_lines'))} of {_num(acc.get('shipped_lines'))} "
                "shipped lines shipped by their first promised date",
            ),
            (
                "average days late",
                _num(acc.get("avg_days_late")),
                f"{_num(acc.get('late_lines'))} late lines, "
                f"at most {_num(acc.get('max_days_late'))} days late",
            ),
        )
    ]
    return {
        KPIS_KEY: headline,
        AGING_KEY: t["backorder_aging"],
        SUPPLIERS_KEY: t["supplier_performance"],
        TOP_SKUS_KEY: t["top_backordered_skus"],
    }


def validation_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """One row per Great Expectations suite the run ran: passed or not, rows checked, failures."""
    rows = con.execute(
        "select suite, success, batch, evaluated, failed, details::varchar "
        "from validation_results where run_id = $r order by suite, batch",
        {"r": run_id},
    ).fetchall()
    out = []
    for suite, success, batch, evaluated, failed, details in rows:
        m = re.match(r"\d+", batch or "")
        names = sorted(
            {str(d.get("expectation")) for d in json.loads(details or "[]") if isinstance(d, dict)}
        )
        out.append(
            {
                "suite": suite,
                "passed": "yes" if success else "NO",
                "rows_checked": int(m.group()) if m else None,
                "expectations": evaluated,
                "failed": failed,
                "failed_expectations": ", ".join(names) or "-",
            }
        )
    return out


def quarantine_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """This run's quarantined rows counted by feed and reason (the value left out)."""
    rows = con.execute(
        "select feed, reason, count(*) as n, count(distinct file) as files "
        "from quarantine where run_id = $r group by all order by feed, n desc, reason",
        {"r": run_id},
    ).fetchall()
    return [{"feed": f, "reason": r, "rows": n, "files": k} for f, r, n, k in rows]


def replenishment_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """The run's suggested orders, furthest below their reorder point first (at most 200)."""
    rows = con.execute(
        "select sku, location_id, position, reorder_point, safety_stock, suggested_qty, "
        "supplier_id, lead_time_days, lead_time_source, reason from replenishment_advice "
        "where run_id = $r and suggested_qty > 0 "
        "order by position - reorder_point, sku, location_id limit $n",
        {"r": run_id, "n": REPLENISH_ROWS},
    ).fetchall()
    names = (
        "sku", "location_id", "position", "reorder_point", "safety_stock", "suggested_qty",
        "supplier_id", "lead_time_days", "lead_time_source", "reason",
    )  # fmt: skip
    return [dict(zip(names, r, strict=True)) for r in rows]


def links_markdown(ui_url: str | None) -> str:
    """The run summary's links to the other artifacts (Prefect UI's artifact-by-key page)."""
    lines = []
    for key, what in LINKED.items():
        target = f"{ui_url.rstrip('/')}/artifacts/key/{key}" if ui_url else None
        lines.append(f"- [{what}]({target}) (`{key}`)" if target else f"- {what}: `{key}`")
    return "\n## Other artifacts of this run\n\n" + "\n".join(lines) + "\n"


# the share of the run each stage stands for on the progress artifact, in order
STAGE_SPAN = {
    "start": (0.0, 2.0),
    "ingest": (2.0, 40.0),
    "validate": (40.0, 55.0),
    "reconcile": (55.0, 65.0),
    "allocate": (65.0, 80.0),
    "payments": (80.0, 80.0),  # captures and releases: few requests, a moment
    "communicate": (80.0, 99.0),
    "replenish": (99.0, 99.5),  # one statement chain, seconds: a sliver of the bar
    "finish": (99.0, 100.0),
}
# the stages' progress lines that say how far they are: "[3/12] orders/x.csv: ...",
# "sent 40/120 messages"
_COUNTED = re.compile(r"^\s*(?:\[(\d+)/(\d+)\]|sent (\d+)/(\d+) messages)")


@dataclass
class Progress:
    """Where a run stands in percent, from its stage and the stages' progress lines."""

    stage: str = "start"
    percent: float = 0.0
    notes: list[str] = field(default_factory=list)

    def enter(self, stage: str) -> float:
        """A stage starts: the percent at its start."""
        self.stage = stage
        self.percent = max(self.percent, STAGE_SPAN[stage][0])
        return self.percent

    def note(self, line: str) -> float | None:
        """A progress line of the stage in hand; the new percent when it says how far."""
        m = _COUNTED.match(line)
        if not m:
            return None
        done, total = (
            (int(m.group(1)), int(m.group(2)))
            if m.group(1)
            else (
                int(m.group(3)),
                int(m.group(4)),
            )
        )
        lo, hi = STAGE_SPAN[self.stage]
        share = min(1.0, done / total) if total else 1.0
        self.percent = max(self.percent, round(lo + (hi - lo) * share, 1))
        return self.percent
