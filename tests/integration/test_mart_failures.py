"""A failed mart suite names the skus and rows that broke it (first N, and the count)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from backorders import pipeline
from backorders.settings import Settings
from tests.integration.conftest import AS_OF, csv_text, write

pytestmark = pytest.mark.integration
TS = "2026-11-12T09:00:00Z"


def test_failed_inventory_equations_name_the_skus_and_rows(
    tmp_path: Path, settings: Settings
) -> None:
    # Arrange: three skus counted at W1, each shipped more since the count than counted
    # (every shipment within its line's quantity: nothing to quarantine)
    landing = tmp_path / "landing"
    skus = ("SKU-A", "SKU-B", "SKU-C")
    bodies = {
        "customers": ["C1,ann@example.com,Ann,gold,en-US,true,2026-11-01T00:00:00Z"],
        "products": [f"{s},W,active,true,,0,7,,2026-11-01T00:00:00Z" for s in skus],
        "orders": ["O1,C1,2026-11-10T09:00:00Z,open,false,0,USD,2026-11-10T09:00:00Z"],
        "order_lines": [f"O1,{i},{s},10,9.99,open,{TS}" for i, s in enumerate(skus, 1)],
        "stock": [f"W1,{s},2,2026-11-12T00:00:00Z" for s in skus],
        "shipments": [
            f"SH{i},O1,{i},{s},{2 + i},W1,2026-11-13T00:00:00Z" for i, s in enumerate(skus, 1)
        ],
    }
    for feed, body in bodies.items():
        write(landing, feed, f"{feed}.csv", csv_text(feed, *body))
    s = settings.model_copy(
        update={"landing": landing, "db": tmp_path / "b.duckdb", "mart_failure_rows": 2}
    )
    pipeline.ingest_stage(s, "run-1", AS_OF, lambda _: None)

    # Act
    with pytest.raises(pipeline.GateClosed) as stopped:
        pipeline.reconcile_stage(s, "run-1", AS_OF, lambda _: None)

    # Assert: the message names the first two rows and counts all three
    message = str(stopped.value)
    assert message.startswith(
        "inventory equations do not hold (suite mart_book_stock): 3 row(s) break suite "
        "mart_book_stock: SKU-A at W1: on hand -1 is below the usable 0 (book stock is negative"
    )
    assert "SKU-B at W1: on hand -2 is below the usable 0" in message
    assert "SKU-C" not in message and "and 1 more" in message
    with duckdb.connect(str(s.db), read_only=True) as con:
        (details,) = con.execute(
            "select details from validation_results where suite = 'mart_book_stock'"
        ).fetchone()
    found = [d for d in json.loads(details) if d["expectation"] == "violations"]
    assert found[0]["unexpected_count"] == 3
    assert [(r["sku"], r["location_id"], r["on_hand"]) for r in found[0]["rows"]] == [
        ("SKU-A", "W1", -1),
        ("SKU-B", "W1", -2),
    ]
