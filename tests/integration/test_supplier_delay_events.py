"""Detecting supplier delays in SQL (sql/events/supplier_delays.sql) on real DuckDB files."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from backorders import events, pipeline
from backorders.adapters import store
from backorders.devtools.demo_data import DemoSpec, generate
from backorders.settings import load_settings

pytestmark = pytest.mark.integration
SPEC = DemoSpec(seed=11)


def _ingest(landing: Path, db: Path, run_id: str, as_of: datetime) -> list[dict]:
    settings = load_settings(landing=landing, db=db)
    pipeline.ingest_stage(settings, run_id, as_of, lambda _m: None)
    with store.connect(db) as con:
        return events.detect_supplier_delays(con, run_id)


def _update(landing: Path, name: str, rows: list[dict]) -> None:
    path = landing / "supplier_updates" / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path, dict]:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, SPEC)
    _ingest(landing, db, "r1", SPEC.as_of)
    with store.connect(db) as con:
        po_id, line_no, supplier, eta = con.execute(
            "select po.po_id, po.line_no, po.supplier_id, "
            "coalesce((select arg_max(u.expected_at, u.reported_at) from supplier_updates u "
            "  where u.po_id = po.po_id and u.line_no = po.line_no "
            "    and u.reported_at > po.updated_at), po.expected_at) "
            "from purchase_orders po where po.status = 'open' order by po.po_id, po.line_no limit 1"
        ).fetchone()
    return landing, db, {"po_id": po_id, "line_no": line_no, "supplier_id": supplier, "eta": eta}


def test_ingest_detects_each_po_line_a_supplier_update_moved_later(
    world: tuple[Path, Path, dict],
) -> None:
    landing, db, po = world
    new = po["eta"] + timedelta(days=9)
    _update(landing, "late.jsonl", [{
        "supplier_id": po["supplier_id"], "po_id": po["po_id"], "line_no": po["line_no"],
        "expected_at": new.isoformat(), "reason": "port strike",
        "reported_at": (SPEC.as_of + timedelta(hours=1)).isoformat(),
    }])  # fmt: skip

    [d] = _ingest(landing, db, "r2", SPEC.as_of + timedelta(hours=2))

    assert (d["supplier_id"], d["po_id"], d["line_no"]) == (
        po["supplier_id"], po["po_id"], po["line_no"],
    )  # fmt: skip
    assert (d["old_date"], d["new_date"], d["days_late"]) == (
        po["eta"].isoformat(), new.isoformat(), 9,
    )  # fmt: skip
    assert d["qty_change"] == 0 and d["reason"] == "port strike"


def test_an_earlier_eta_or_an_update_older_than_the_effective_one_is_no_delay(
    world: tuple[Path, Path, dict],
) -> None:
    landing, db, po = world
    key = {"supplier_id": po["supplier_id"], "po_id": po["po_id"], "line_no": po["line_no"]}
    _update(landing, "early.jsonl", [
        {**key, "expected_at": (po["eta"] - timedelta(days=2)).isoformat(),
         "reported_at": (SPEC.as_of + timedelta(hours=1)).isoformat()},
        # later, but reported before the PO row itself: it never applied
        {**key, "expected_at": (po["eta"] + timedelta(days=30)).isoformat(),
         "reported_at": "2020-01-01T00:00:00Z"},
    ])  # fmt: skip

    assert _ingest(landing, db, "r2", SPEC.as_of + timedelta(hours=2)) == []


def test_a_cut_confirmed_quantity_is_a_delay_with_its_qty_change(
    world: tuple[Path, Path, dict],
) -> None:
    landing, db, po = world
    with store.connect(db) as con:
        qty = store.scalar(
            con,
            "select least(qty, coalesce((select arg_max(qty_confirmed, reported_at) "
            "from supplier_updates u where u.po_id = p.po_id and u.line_no = p.line_no "
            "and qty_confirmed is not null), qty)) from purchase_orders p "
            "where po_id = $p and line_no = $l",
            {"p": po["po_id"], "l": po["line_no"]},
        )
    _update(landing, "short.jsonl", [{
        "supplier_id": po["supplier_id"], "po_id": po["po_id"], "line_no": po["line_no"],
        "expected_at": po["eta"].isoformat(), "qty_confirmed": qty - 1,
        "reported_at": (SPEC.as_of + timedelta(hours=1)).isoformat(),
    }])  # fmt: skip

    [d] = _ingest(landing, db, "r2", SPEC.as_of + timedelta(hours=2))

    assert (d["days_late"], d["qty_change"], d["new_qty"]) == (0, -1, qty - 1)


def test_the_demo_supplier_updates_delay_po_lines_on_the_first_ingest(tmp_path: Path) -> None:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, SPEC)

    delays = _ingest(landing, db, "r1", SPEC.as_of)

    assert delays, "the demo data holds delay notices"
    assert all(
        date.fromisoformat(d["new_date"]) > date.fromisoformat(d["old_date"]) or d["qty_change"] < 0
        for d in delays
    )
    assert len({(d["po_id"], d["line_no"]) for d in delays}) == len(delays)
