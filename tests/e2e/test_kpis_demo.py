"""`backorders kpis` on the demo database, after a whole demo cycle."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import pytest

from backorders.cli import main
from backorders.kpis import compute_kpis

pytestmark = pytest.mark.e2e


def demo(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run `backorders demo` into the folder, outside capsys.

    Prefect's console log handler keeps the stderr it first saw: made under capsys, it
    would write to a stream closed when the test ends, and the next flow in the process
    fails ("maximum recursion depth exceeded" while logging).
    """
    with capsys.disabled():
        assert main(["demo", "--dir", str(folder)]) == 0


def test_kpis_of_the_demo_agree_with_its_line_status_and_purchase_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: one demo cycle (its first run: every line's first promise is this run's)
    demo(tmp_path, capsys)
    db = tmp_path / "backorders.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        lines = con.execute(
            "select sku, status, qty_ordered - qty_shipped, qty_allocated, "
            "qty_promised + qty_unpromised from line_status"
        ).fetchall()
        po_status = dict(
            con.execute("select status, count(*) from purchase_orders group by all").fetchall()
        )

    # Act
    assert main(["kpis", "--db", str(db), "--format", "json"]) == 0
    kpis = json.loads(capsys.readouterr().out)
    assert main(["kpis", "--db", str(db), "--format", "table"]) == 0
    text = capsys.readouterr().out

    # Assert: the figures, counted here from line_status and purchase_orders
    promised = [ln for ln in lines if ln[1] not in ("shipped", "cancelled")]
    backordered = [
        ln for ln in promised if ln[1] in ("partially_allocated", "promised", "unpromised")
    ]
    (fill,) = kpis["fill_rate"]
    assert fill["lines"] == len(promised)
    assert fill["lines_filled"] == sum(ln[1] == "allocated" for ln in promised)
    assert fill["units"] == sum(ln[2] for ln in promised)
    assert fill["units_filled"] == sum(ln[3] for ln in promised)
    assert 0 < fill["line_fill_rate_pct"] < 100
    assert sum(b["lines"] for b in kpis["backorder_aging"]) == len(backordered)
    assert sum(b["backordered_units"] for b in kpis["backorder_aging"]) == sum(
        ln[4] for ln in backordered
    )
    units_by_sku = Counter()
    for ln in backordered:
        units_by_sku[ln[0]] += ln[4]
    top = kpis["top_backordered_skus"]
    assert len(top) == 10
    assert [t["backordered_units"] for t in top] == sorted(units_by_sku.values(), reverse=True)[:10]
    suppliers = kpis["supplier_performance"]
    assert sum(s["received_lines"] for s in suppliers) == po_status["received"]
    assert sum(s["open_lines"] for s in suppliers) == po_status["open"]
    # the demo's shipped lines shipped before the pipeline first saw them: none measured
    assert kpis["promise_accuracy"][0]["shipped_lines"] == 0
    for title in ("fill rate", "backorder aging", "promise accuracy", "supplier performance"):
        assert f"\n{title}\n" in text
    assert top[0]["sku"] in text.split("top backordered skus")[1]


@pytest.mark.slow  # 20-30 s: in the slow suite, which CI runs (the default suite stays under 10 min)
def test_kpis_after_a_second_cycle_measure_shipped_lines_against_their_first_promise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: the demo cycle, then shipments of six lines on Nov 24 and 25 and a
    # second cycle on Nov 26
    demo(tmp_path, capsys)
    db, landing = tmp_path / "backorders.duckdb", tmp_path / "landing"
    with duckdb.connect(str(db), read_only=True) as con:
        before = json.loads(json.dumps(compute_kpis(con)))
        # six lines allocated from one stock location each (promised for Nov 24)
        shipped = con.execute(
            "select a.order_id, a.line_no, a.sku, any_value(a.qty), any_value(a.supply_ref), "
            "any_value(a.promised_date) from allocations as a join line_status as ls "
            "using (order_id, line_no) where ls.status = 'allocated' and ls.qty_shipped = 0 "
            "group by all having count(*) = 1 order by a.order_id, a.line_no limit 6"
        ).fetchall()
    # three ship on their promised date, three a day after it
    rows = "".join(
        f"SHP-KPI-{i},{o},{n},{sku},{q},{loc},2026-11-{24 + i % 2}T10:00:00Z\n"
        for i, (o, n, sku, q, loc, _) in enumerate(shipped)
    )
    (landing / "shipments" / "shipments_kpi.csv").write_text(
        "shipment_id,order_id,line_no,sku,qty,location_id,shipped_at\n" + rows
    )
    run = ["run", "--landing", str(landing), "--db", str(db), "--as-of", "2026-11-26T06:00:00Z"]
    with capsys.disabled():
        assert main([*run, "--dry-run"]) == 0

    # Act
    assert main(["kpis", "--db", str(db), "--format", "json"]) == 0
    after = json.loads(capsys.readouterr().out)

    # Assert: on time when shipped on or before the date the first run promised
    late = [(date(2026, 11, 24 + i % 2) - p).days for i, (*_, p) in enumerate(shipped)]
    late = [d for d in late if d > 0]
    (acc,) = after["promise_accuracy"]
    assert acc["shipped_lines"] == 6 and acc["late_lines"] == len(late)
    assert acc["on_time_lines"] == 6 - len(late)
    assert acc["max_days_late"] == (max(late) if late else None)
    assert late == [1, 1, 1] and acc["on_time_pct"] == 50.0 and acc["avg_days_late"] == 1.0
    # the first promises are the first run's: the second run's changes do not move them
    assert after["fill_rate"] == before["fill_rate"]
    assert after["run_id"] != before["run_id"]
