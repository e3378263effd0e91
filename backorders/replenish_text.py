"""`backorders replenish` output: the advice rows as JSON, CSV or an aligned text table."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from backorders.adapters.replenish import COLUMNS

# the table's columns (the reason goes on its own line under each row)
_TABLE = (
    "sku",
    "location_id",
    "daily_demand",
    "lead_time_days",
    "safety_stock",
    "reorder_point",
    "position",
    "suggested_qty",
    "supplier_id",
)


def advice_json(rows: list[dict[str, Any]], run_id: str) -> str:
    """A JSON array: one object per sku and location, numbers as JSON numbers."""
    return json.dumps([{"run_id": run_id, **r} for r in rows], indent=1, ensure_ascii=False)


def advice_csv(rows: list[dict[str, Any]], run_id: str) -> str:
    """CSV with a header row (run_id, then the table's columns); empty cells for nulls."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("run_id", *COLUMNS))
    for r in rows:
        w.writerow((run_id, *("" if r[c] is None else r[c] for c in COLUMNS)))
    return out.getvalue()


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def advice_table(rows: list[dict[str, Any]], run_id: str, *, total: int) -> str:
    """Aligned text: a header, one line per row and its reason under it."""
    orders = sum(1 for r in rows if r["suggested_qty"] > 0)
    units = sum(r["suggested_qty"] for r in rows)
    head = (
        f"replenishment advice of run {run_id}: {orders} of {total} sku/location(s) below their "
        f"reorder point, {units:,} units suggested"
    )
    if not rows:
        return head + "\n(no order suggested; --all shows every sku and location)"
    cells = [[_cell(r[c]) for c in _TABLE] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(_TABLE)]
    text = {0, 1, 8}  # sku, location, supplier: left-aligned

    def line(values: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i in text else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    out = [head, "", line(list(_TABLE)), line(["-" * w for w in widths])]
    for r, row in zip(rows, cells, strict=True):
        out += [line(row), f"    why: {r['reason']}"]
    return "\n".join(out)
