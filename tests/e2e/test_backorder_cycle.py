"""The real flow under a real Prefect API, on generated demo data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from backorders.adapters import audit
from backorders.devtools.demo_data import DemoSpec, generate
from backorders.devtools.sendgrid_server import FakeSendGrid
from backorders.report import summary_lines
from flows.backorder_cycle import backorder_cycle

pytestmark = pytest.mark.e2e
SPEC = DemoSpec(seed=11, scale=1)


def _run(landing: Path, db: Path, **kw: Any) -> dict[str, Any]:
    return backorder_cycle(landing=str(landing), db=str(db), as_of=SPEC.as_of, **kw)


def _ro(db: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(db), read_only=True)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("cycle")
    landing, db = root / "landing", root / "backorders.duckdb"
    generate(landing, SPEC)
    return landing, db, _run(landing, db, dry_run=True)


def test_cycle_succeeds_and_reports_every_stage(
    first_run: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, db, summary = first_run
    assert summary["status"] == "succeeded"
    assert set(summary) >= {
        "ingest", "validate", "reconcile", "allocate", "communicate", "replenish"
    }  # fmt: skip
    assert summary["ingest"]["files"] == {"loaded": 10, "rejected": 1}
    assert 0.9 < summary["validate"]["inventory_accuracy"] < 1.0
    with _ro(db) as con:
        assert con.execute("select status from runs").fetchall() == [("succeeded",)]


def test_bad_rows_are_quarantined_and_the_bad_file_rejected(
    first_run: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, db, _ = first_run
    with _ro(db) as con:
        by_feed = dict(con.execute("select feed, count(*) from quarantine group by all").fetchall())
        rejected = con.execute(
            "select path, reason from ingested_files where status = 'rejected'"
        ).fetchall()
    assert by_feed == {"customers": 1, "orders": 1, "order_lines": 5, "purchase_orders": 1}
    assert len(rejected) == 1 and rejected[0][0].endswith("stock_broken_export.csv")
    assert "on_hand" in rejected[0][1]


def test_no_line_gets_more_than_it_ordered(first_run: tuple[Path, Path, dict[str, Any]]) -> None:
    _, db, _ = first_run
    with _ro(db) as con:
        over = con.execute(
            """
            select l.order_id, l.line_no
            from line_status l
            left join (select order_id, line_no, sum(qty) q from allocations group by all) a
                using (order_id, line_no)
            where coalesce(a.q, 0) > l.qty_ordered - l.qty_shipped
               or (l.status not in ('shipped', 'cancelled') and
                   l.qty_allocated + l.qty_promised + l.qty_unpromised <> l.qty_ordered - l.qty_shipped)
            """
        ).fetchall()
        assert con.execute("select count(*) from allocations").fetchone()[0] > 0
    assert over == []


def test_no_supply_lot_gives_more_than_it_has(first_run: tuple[Path, Path, dict[str, Any]]) -> None:
    _, db, _ = first_run
    with _ro(db) as con:
        over = con.execute(
            """
            select a.supply_ref, sum(a.qty) given, any_value(s.qty) has
            from allocations a
            join supply_lots s using (sku, supply_kind, supply_ref)
            group by a.sku, a.supply_kind, a.supply_ref
            having sum(a.qty) > any_value(s.qty)
            """
        ).fetchall()
        unusable = con.execute(
            "select count(*) from allocations a join supply_lots s using (sku, supply_kind, supply_ref) "
            "where not s.usable"
        ).fetchone()[0]
    assert over == [] and unusable == 0


def test_no_lower_ranked_line_holds_stock_while_a_higher_ranked_line_is_short(
    first_run: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, db, _ = first_run
    with _ro(db) as con:
        violations = con.execute(
            """
            select lo.order_id, lo.line_no, hi.order_id, hi.line_no
            from line_status lo
            join line_status hi
              on hi.sku = lo.sku and hi.priority_rank < lo.priority_rank
            join orders o on o.order_id = hi.order_id
            where lo.qty_allocated > 0
              and hi.qty_allocated < hi.qty_ordered - hi.qty_shipped
              -- a held ship-complete order gives its stock to the next lines by design
              and not o.ship_complete
            """
        ).fetchall()
        ranked = con.execute(
            "select count(*) from line_status where priority_rank is not null"
        ).fetchone()[0]
        held = con.execute(
            "select count(*) from line_status l join orders o using (order_id) "
            "where o.ship_complete and l.qty_allocated = 0 and l.reason like '%held: ship-complete%'"
        ).fetchone()[0]
    assert ranked > 1000 and held > 0
    assert violations == []


def test_overdue_purchase_orders_promise_nothing(
    first_run: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, db, _ = first_run
    with _ro(db) as con:
        overdue = con.execute(
            "select count(*) from supply_lots where note like 'overdue%'"
        ).fetchone()[0]
        promised_from_overdue = con.execute(
            "select count(*) from allocations a join supply_lots s using (sku, supply_kind, supply_ref) "
            "where s.note like 'overdue%'"
        ).fetchone()[0]
    assert overdue > 0 and promised_from_overdue == 0


def test_every_backordered_order_got_a_message_and_opted_out_customers_are_suppressed(
    first_run: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, db, summary = first_run
    with _ro(db) as con:
        missing = con.execute(
            """
            select distinct l.order_id from line_status l
            where l.status in ('promised', 'unpromised', 'partially_allocated', 'not_backorderable')
              and l.order_id not in (select order_id from outbox)
            """
        ).fetchall()
        opted_out_pending = con.execute(
            "select count(*) from outbox o join customers c using (customer_id) "
            "where not c.email_opt_in and o.status <> 'suppressed'"
        ).fetchone()[0]
        dups = con.execute("select count(*) - count(distinct message_key) from outbox").fetchone()[
            0
        ]
    assert missing == []
    assert opted_out_pending == 0 and dups == 0
    assert summary["communicate"]["dry_run"] is True


def test_audit_log_is_intact_and_records_the_run(
    first_run: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, db, _ = first_run
    with _ro(db) as con:
        assert audit.verify(con) == []
        events = {e for (e,) in con.execute("select distinct event from audit_log").fetchall()}
    assert {
        "run_started",
        "file_loaded",
        "file_rejected",
        "validation",
        "allocation_completed",
        "allocation_decisions",
        "messages_queued",
        "run_succeeded",
    } <= events


def test_run_summary_artifact_is_published(first_run: tuple[Path, Path, dict[str, Any]]) -> None:
    from prefect.artifacts import Artifact

    art = Artifact.get("backorder-cycle-summary")
    assert art is not None
    assert "lines backordered" in str(art.data)
    assert "Audit chain head" in str(art.data)


def test_replenish_stage_runs_in_the_cycle_and_its_headline_is_in_the_summary(
    first_run: tuple[Path, Path, dict[str, Any]],
) -> None:
    from prefect.artifacts import Artifact

    from backorders.report import summary_text

    _, db, summary = first_run
    r = summary["replenish"]
    with _ro(db) as con:
        stored = con.execute(
            "select count(*), count(*) filter (where suggested_qty > 0), sum(suggested_qty), "
            "count(distinct run_id), count(distinct sku) from replenishment_advice"
        ).fetchone()
        stocked = con.execute("select count(distinct sku) from stock").fetchone()
    assert stored == (r["rows"], r["below_reorder_point"], r["suggested_units"], 1, stored[4])
    assert stored[4] >= stocked[0] > 0  # every stocked sku is advised on
    assert 0 < r["below_reorder_point"] < r["rows"] and r["suggested_units"] > 0
    assert f"{r['below_reorder_point']} sku/location(s) below their reorder point" in summary_text(
        summary
    )
    art = Artifact.get("backorder-replenishment")
    assert art is not None and "suggested_qty" in str(art.data)


def test_rerun_on_same_inputs_reallocates_nothing_and_gives_identical_allocations_and_no_email(
    tmp_path: Path,
) -> None:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, SPEC)
    first = _run(landing, db, dry_run=True)
    second = _run(landing, db, dry_run=True)
    assert first["allocate"]["plan"]["mode"] == "full"
    # the first run allocated lines: with keep_committed they are served first from now
    # on, an input that changed, so the second run redoes their skus (and the skus that
    # share a ship-complete order with them), and nothing else
    plan = second["allocate"]["plan"]
    assert plan["by_trigger"]["committed"] > 0
    assert {t for t, n in plan["by_trigger"].items() if n} <= {"committed", "ship_complete"}
    # nothing changed since: the incremental path redoes no sku (docs/allocation.md)
    third = _run(landing, db, dry_run=True)
    plan = third["allocate"]["plan"]
    assert (plan["mode"], plan["skus_reallocated"]) == ("incremental", 0), plan
    assert not any(plan["by_trigger"].values())
    assert (third["reconcile"]["supply_mode"], third["reconcile"]["skus_rebuilt"]) == (
        "incremental",
        0,
    )
    assert ("allocation", "incremental, 0 sku(s) reallocated (no input changed)") in (
        summary_lines(third)
    )
    for rerun in (second, third):
        assert rerun["ingest"]["files"] == {"duplicate": 11}
        assert rerun["communicate"]["queued"] == rerun["communicate"]["suppressed"] == 0
    # --full: every sku again, the same results
    fourth = _run(landing, db, dry_run=True, full=True)
    assert fourth["allocate"]["plan"]["why"] == "requested (--full)"
    assert fourth["allocate"]["plan"]["skus_reallocated"] > 0
    assert fourth["reconcile"]["supply_mode"] == "requested (--full)"
    assert {k: v for k, v in fourth["allocate"].items() if k != "plan"} == {
        k: v for k, v in third["allocate"].items() if k != "plan"
    }
    with _ro(db) as con:
        for rerun in (second, third, fourth):
            diff = con.execute(
                """
                (select * exclude (run_id) from allocations where run_id = $a
                 except all select * exclude (run_id) from allocations where run_id = $b)
                union all
                (select * exclude (run_id) from allocations where run_id = $b
                 except all select * exclude (run_id) from allocations where run_id = $a)
                """,
                {"a": first["run_id"], "b": rerun["run_id"]},
            ).fetchall()
            changes = con.execute(
                "select count(*) from promise_changes where run_id = $b", {"b": rerun["run_id"]}
            ).fetchone()[0]
            assert diff == [] and changes == 0, rerun["run_id"]


def test_emails_go_out_once_through_a_local_sendgrid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, SPEC)
    with FakeSendGrid(api_key="SG.test-key-e2e") as fake:
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key-e2e")
        monkeypatch.setenv("BACKORDERS_SENDGRID_HOST", fake.url)
        monkeypatch.setenv("BACKORDERS_FROM_EMAIL", "care@shop.test")
        fake.fail_next(3, "503")  # transient: retried with backoff
        first = _run(landing, db)
        second = _run(landing, db)
        keys = fake.received_keys()
    with _ro(db) as con:
        sent = dict(
            con.execute(
                "select message_key, provider_message_id from outbox where status = 'sent'"
            ).fetchall()
        )
        not_sent = con.execute(
            "select count(*) from outbox where status in ('pending', 'sending', 'failed')"
        ).fetchone()[0]
        details = " ".join(
            d for (d,) in con.execute("select details::varchar from audit_log").fetchall()
        )
    assert first["communicate"]["sent"]["sent"] == len(sent) > 100
    assert set(keys) == set(sent) and max(keys.values()) == 1
    assert all(pid for pid in sent.values())
    assert not_sent == 0
    assert second["communicate"]["sent"] == {
        "sent": 0,
        "failed": 0,
        "unknown": 0,
        "not_sent": 0,
        "not_attempted": 0,
    }
    assert (
        first["communicate"]["send_failures"] == 0 and first["communicate"]["send_stopped"] is None
    )
    assert "SG.test-key-e2e" not in details


def test_low_inventory_accuracy_stops_the_run_before_allocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, SPEC)
    monkeypatch.setenv("BACKORDERS_MIN_INVENTORY_ACCURACY", "0.999")
    with pytest.raises(Exception, match=r"inventory accuracy .* below the configured minimum"):
        _run(landing, db, dry_run=True)
    with _ro(db) as con:
        assert con.execute("select status from runs").fetchall() == [("blocked",)]
        assert con.execute("select count(*) from allocations").fetchone()[0] == 0
        assert con.execute("select count(*) from outbox").fetchone()[0] == 0
