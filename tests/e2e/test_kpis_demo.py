"""`backorders kpis` on the demo database, after a whole demo cycle."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from backorders.cli import main

pytestmark = pytest.mark.e2e


def test_kpis_of_the_demo_agree_with_its_line_status_and_purchase_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: one demo cycle (its first run: every line's first promise is this run's)
    assert main(["demo", "--dir", str(tmp_path)]) == 0
    db = tmp_path / "backorders.duckdb"
    capsys.readouterr()
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
