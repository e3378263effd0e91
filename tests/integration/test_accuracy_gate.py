"""The inventory accuracy gate judges the stock basis: a rerun, a crash or a new file of
other items does not open it; new counts of the items, or a person's override, do."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from backorders import cli, pipeline
from backorders.adapters import audit
from backorders.settings import Settings
from tests.integration.conftest import AS_OF, csv_text, write, write_base

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
SKUS = ("SKU-A", "SKU-B", "SKU-C")
LOCS = ("W1", "W2", "W3", "W4")


def _counts(landing: Path, name: str, as_of: str, on_hand: dict[tuple[str, str], int]) -> Path:
    body = [f"{loc},{sku},{n},{as_of}" for (loc, sku), n in sorted(on_hand.items())]
    return write(landing, "stock", name, csv_text("stock", *body))


FIRST = {(loc, sku): 10 for loc in LOCS for sku in SKUS}  # 12 items
# the recount: 3 of the 12 items differ from the first count (book stock): 75 %
RECOUNT = FIRST | {("W1", "SKU-A"): 7, ("W2", "SKU-B"): 4, ("W3", "SKU-C"): 12}


@pytest.fixture
def gate_settings(tmp_path: Path, settings: Settings) -> Settings:
    """A landing zone with a first count and an inaccurate recount; settings pointing at it."""
    landing = tmp_path / "landing"
    write_base(landing)
    _counts(landing, "a_first.csv", "2026-11-20T00:00:00Z", FIRST)
    _counts(landing, "b_recount.csv", "2026-11-22T00:00:00Z", RECOUNT)
    # partial recounts (a few items of a location) are the point here, not cut-off exports
    return settings.model_copy(
        update={"landing": landing, "db": tmp_path / "b.duckdb", "stock_min_row_ratio": 0.0}
    )


def _cycle_to_gate(s: Settings, run_id: str) -> dict:
    """Ingest and validate as a run does; the validation summary (GateClosed propagates)."""
    pipeline.ingest_stage(s, run_id, AS_OF, lambda _: None)
    return pipeline.validate_stage(s, run_id, lambda _: None)


def _gate_rows(s: Settings) -> list[tuple]:
    with duckdb.connect(str(s.db), read_only=True) as con:
        return con.execute(
            "select run_id, state, judged_items, inaccurate_items from inventory_gate "
            "order by decided_at, run_id"
        ).fetchall()


def _audit_events(s: Settings) -> list[str]:
    with duckdb.connect(str(s.db), read_only=True) as con:
        assert audit.verify(con) == []
        return [e for (e,) in con.execute("select event from audit_log order by seq").fetchall()]


def test_closed_gate_stays_closed_on_a_rerun_with_no_new_files(gate_settings: Settings) -> None:
    # Arrange: the first run stops at the gate
    with pytest.raises(pipeline.GateClosed) as first:
        _cycle_to_gate(gate_settings, "run-1")

    # Act: the same run again, no new file
    with pytest.raises(pipeline.GateClosed) as again:
        _cycle_to_gate(gate_settings, "run-2")

    # Assert: the same reason, naming the items to recount
    assert str(again.value) == str(first.value)
    assert "inventory accuracy 75.0% is below the configured minimum 95.0%" in str(again.value)
    assert "W1/SKU-A (book 10, counted 7)" in str(again.value)
    assert _gate_rows(gate_settings) == [("run-1", "closed", 12, 3), ("run-2", "closed", 12, 3)]


def test_new_accurate_counts_of_the_items_open_the_closed_gate(gate_settings: Settings) -> None:
    # Arrange: closed; then the three items are counted again and confirm the recount
    with pytest.raises(pipeline.GateClosed):
        _cycle_to_gate(gate_settings, "run-1")
    confirm = {k: RECOUNT[k] for k in (("W1", "SKU-A"), ("W2", "SKU-B"), ("W3", "SKU-C"))}
    _counts(gate_settings.landing, "c_confirm.csv", "2026-11-23T00:00:00Z", confirm)

    # Act
    summary = _cycle_to_gate(gate_settings, "run-2")

    # Assert
    assert summary["inventory_accuracy"] == 1.0
    assert summary["gate"]["state"] == "open" and summary["gate"]["newly_judged"] == 3
    assert _gate_rows(gate_settings)[-1] == ("run-2", "open", 12, 0)


def test_new_counts_of_other_items_do_not_open_the_gate(gate_settings: Settings) -> None:
    # Arrange: closed; then one accurate count of an item that was right already
    with pytest.raises(pipeline.GateClosed):
        _cycle_to_gate(gate_settings, "run-1")
    _counts(gate_settings.landing, "c_other.csv", "2026-11-23T00:00:00Z", {("W4", "SKU-A"): 10})

    # Act / Assert: this run's only count is accurate, the stock basis is not
    with pytest.raises(pipeline.GateClosed, match=r"75\.0% is below"):
        _cycle_to_gate(gate_settings, "run-2")


def test_override_opens_the_closed_gate_once_and_is_audited(
    gate_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: closed
    with pytest.raises(pipeline.GateClosed):
        _cycle_to_gate(gate_settings, "run-1")

    # Act: a person accepts the counts, then two runs follow
    rc = cli.main(
        [
            "accept-inventory",
            "--db",
            str(gate_settings.db),
            "--reason",
            "counted again by hand: the recount is right",
            "--by",
            "ann",
        ]
    )
    out = capsys.readouterr().out
    summary = _cycle_to_gate(gate_settings, "run-2")
    with pytest.raises(pipeline.GateClosed):
        _cycle_to_gate(gate_settings, "run-3")

    # Assert: the override opened run-2 only, and every step is in the audit log
    assert rc == 0 and "override 1 recorded by ann" in out
    assert summary["gate"]["state"] == "overridden"
    assert summary["gate"]["override"]["outcome"] == "applied"
    assert [r[1] for r in _gate_rows(gate_settings)] == ["closed", "overridden", "closed"]
    events = _audit_events(gate_settings)
    assert events.count("inventory_override_recorded") == 1
    assert events.count("inventory_override_applied") == 1
    assert events.index("inventory_override_recorded") < events.index("inventory_override_applied")
    with duckdb.connect(str(gate_settings.db), read_only=True) as con:
        assert con.execute(
            "select by_name, reason, closed_run_id, used_by_run, outcome "
            "from inventory_gate_overrides"
        ).fetchall() == [
            ("ann", "counted again by hand: the recount is right", "run-1", "run-2", "applied")
        ]


def test_override_is_refused_when_the_gate_is_not_closed(
    gate_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: a run whose gate is open (every count accurate)
    _counts(gate_settings.landing, "b_recount.csv", "2026-11-22T00:00:00Z", FIRST)
    _cycle_to_gate(gate_settings, "run-1")

    # Act
    rc = cli.main(["accept-inventory", "--db", str(gate_settings.db), "--reason", "just in case"])

    # Assert
    assert rc == 1
    assert "the inventory accuracy gate is not closed" in capsys.readouterr().err
    assert "inventory_override_recorded" not in _audit_events(gate_settings)


def test_override_of_other_inaccurate_counts_is_not_applied(gate_settings: Settings) -> None:
    # Arrange: closed, accepted; then a count makes another item inaccurate
    with pytest.raises(pipeline.GateClosed):
        _cycle_to_gate(gate_settings, "run-1")
    assert cli.main(["accept-inventory", "--db", str(gate_settings.db), "--reason", "ok"]) == 0
    _counts(gate_settings.landing, "c_other.csv", "2026-11-23T00:00:00Z", {("W4", "SKU-A"): 1})

    # Act / Assert
    with pytest.raises(pipeline.GateClosed, match="it was not applied"):
        _cycle_to_gate(gate_settings, "run-2")
    assert "inventory_override_stale" in _audit_events(gate_settings)


_CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    from datetime import datetime
    from pathlib import Path
    from backorders import pipeline
    from backorders.settings import load_settings

    s = load_settings(landing=Path(sys.argv[1]), db=Path(sys.argv[2]), stock_min_row_ratio=0)
    as_of = datetime.fromisoformat(sys.argv[3])
    pipeline.ingest_stage(s, "failed", as_of, lambda m: None)
    if sys.argv[4] == "disk_full":
        # no file may grow past 1 KiB from here on: the database's writes fail as on a
        # full disk (EFBIG instead of ENOSPC; SIGXFSZ ignored so that the write fails)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
    print("validating", flush=True)
    try:
        pipeline.validate_stage(s, "failed", lambda m: None)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", flush=True)
        sys.exit(3)
    print("validated", flush=True)
    """
)


@pytest.mark.parametrize("failure", ["disk_full", "killed"])
def test_validation_that_fails_half_way_leaves_the_gate_closed_for_the_rerun(
    failure: str, gate_settings: Settings
) -> None:
    # Arrange: a run whose ingest committed the inaccurate recount, then whose validation
    # failed: its database writes refused (as on a full disk), or killed (SIGKILL)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(gate_settings.landing),
            str(gate_settings.db),
            AS_OF.isoformat(),
            failure,
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "validating"
    if failure == "killed":
        child.kill()
    rest = child.stdout.read()
    rc = child.wait(timeout=120)
    if failure == "killed":
        assert rc == -9, "the child was to be killed inside its validation"
    else:
        assert rc == 3 and "File too large" in rest, rest

    # Act: the rerun, with no new file
    with pytest.raises(pipeline.GateClosed, match=r"75\.0% is below"):
        _cycle_to_gate(gate_settings, "run-2")

    # Assert: the failed run's counts were judged by the rerun
    assert _gate_rows(gate_settings) == [("run-2", "closed", 12, 3)]
