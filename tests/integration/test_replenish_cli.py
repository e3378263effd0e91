"""`backorders replenish`: the formats, the errors, and the settings it refuses."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pytest

from backorders.cli import main
from backorders.settings import Settings
from tests.integration.conftest import AS_OF, IngestFn
from tests.integration.test_replenishment_sql import advise, base, feed, orders

pytestmark = pytest.mark.integration

# the fields the issue asks every JSON object for
FIELDS = {
    "sku", "location_id", "daily_demand", "demand_sd", "lead_time_days", "lead_time_sd",
    "lead_time_source", "service_level", "safety_stock", "reorder_point", "position",
    "suggested_qty", "supplier_id", "reason",
}  # fmt: skip
NUMBERS = FIELDS - {"sku", "location_id", "lead_time_source", "supplier_id", "reason"}


@pytest.fixture
def advised(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    ingest: IngestFn,
    settings: Settings,
    db_path: Path,
) -> Path:
    """A database whose committed run r1 advises on two skus (one to order, one covered)."""
    base(
        landing,
        "SKU-A,Widget,active,true,,0,7,,2026-09-01T00:00:00Z,10",
        "SKU-B,Gadget,active,true,,0,7,,2026-09-01T00:00:00Z,",
    )
    orders(
        landing, ("O1", "2026-11-10", "SKU-A", 4, "open"), ("O2", "2026-11-12", "SKU-B", 1, "open")
    )
    feed(
        landing,
        "stock",
        "s.csv",
        "location_id,sku,on_hand,as_of",
        "WH,SKU-A,0,2026-11-22T00:00:00Z",
        "WH,SKU-B,50,2026-11-22T00:00:00Z",
    )
    ingest()
    advise(con, settings)
    con.execute(
        "insert into runs (run_id, as_of, started_at, status) values ('r1', $a, $a, 'succeeded')",
        {"a": AS_OF},
    )
    con.close()
    return db_path


def test_replenish_json_is_one_object_per_sku_and_location_with_numbers(
    advised: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replenish", "--db", str(advised), "--format", "json"]) == 0

    rows = json.loads(capsys.readouterr().out)
    assert [(r["sku"], r["location_id"]) for r in rows] == [("SKU-A", "WH"), ("SKU-B", "WH")]
    for r in rows:
        assert set(r) >= FIELDS and r["run_id"] == "r1"
        assert all(isinstance(r[f], int | float) for f in NUMBERS if r[f] is not None)
    a, b = rows
    assert a["suggested_qty"] > 0 and a["suggested_qty"] % 10 == 0 and a["supplier_id"] is None
    assert b["suggested_qty"] == 0 and "covers the reorder point" in b["reason"]


def test_replenish_csv_has_a_header_and_a_row_per_sku_and_location(
    advised: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replenish", "--db", str(advised), "--format", "csv"]) == 0

    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 and set(rows[0]) >= FIELDS | {"run_id"}
    assert rows[0]["supplier_id"] == ""  # null as an empty cell
    assert float(rows[0]["reorder_point"]) > int(rows[0]["position"])


def test_replenish_table_lists_the_orders_and_says_why(
    advised: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replenish", "--db", str(advised)]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 sku/location(s) below their reorder point" in out
    assert "SKU-A" in out and "SKU-B" not in out and "why: position" in out

    assert main(["replenish", "--db", str(advised), "--all"]) == 0
    assert "SKU-B" in capsys.readouterr().out


def test_replenish_without_a_committed_run_says_so(
    con: duckdb.DuckDBPyConnection, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    con.close()
    assert main(["replenish", "--db", str(db_path)]) == 1
    assert "no committed run with replenishment advice yet" in capsys.readouterr().err


def test_replenish_without_a_database_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replenish", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "no database at" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REPLENISH_SERVICE_LEVEL", "1.5"),
        ("REPLENISH_SERVICE_LEVEL", "0.2"),
        ("REPLENISH_WINDOW_DAYS", "-30"),
        ("REPLENISH_WINDOW_DAYS", "100000"),
        ("REPLENISH_COVER_DAYS", "-1"),
    ],
)
def test_negative_or_absurd_replenish_settings_are_refused_with_exit_2(
    name: str,
    value: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(f"BACKORDERS_{name}", value)
    (tmp_path / "landing").mkdir()
    db = str(tmp_path / "b.duckdb")

    assert main(["run", "--landing", str(tmp_path / "landing"), "--db", db]) == 2
    err = capsys.readouterr().err
    assert f"invalid settings: {name.lower()}" in err


def test_only_the_advice_of_the_latest_runs_is_kept(
    con: duckdb.DuckDBPyConnection, landing: Path, ingest: IngestFn, db_path: Path
) -> None:
    from datetime import timedelta

    from backorders.adapters import replenish
    from backorders.settings import load_settings

    base(landing, "SKU-A,Widget,active,true,,0,7,,2026-09-01T00:00:00Z,")
    orders(landing, ("O1", "2026-11-10", "SKU-A", 4, "open"))
    ingest()
    settings = load_settings(db=db_path, replenish_keep_runs=2)
    advise(con, settings)  # run r1, not in runs: not a committed run, so not kept
    for i in (2, 3, 4):
        run = f"r{i}"
        started = AS_OF + timedelta(hours=i)
        con.execute(
            "insert into runs (run_id, as_of, started_at, status) values ($r, $a, $a, 'succeeded')",
            {"r": run, "a": started},
        )
        replenish.replenish(con, run_id=run, as_of=AS_OF, settings=settings)

    kept = con.execute("select distinct run_id from replenishment_advice order by 1").fetchall()
    assert kept == [("r3",), ("r4",)]
