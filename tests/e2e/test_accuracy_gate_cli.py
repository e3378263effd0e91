"""`backorders run` stopped by the accuracy gate stays stopped when run again, until a
person's override (`backorders accept-inventory`) lets one run through."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from backorders.cli import main
from tests.integration.conftest import write_base
from tests.integration.test_accuracy_gate import FIRST, RECOUNT, _counts

pytestmark = pytest.mark.e2e


def _stopped(err: str) -> str:
    """The reason `run` gave on stderr for stopping (the log lines around it vary)."""
    return next(line for line in err.splitlines() if "the cycle stopped:" in line)


# 20-25 s: in the slow suite, which CI runs (the gate itself: tests/integration/test_accuracy_gate.py)
@pytest.mark.slow
def test_rerun_of_a_run_stopped_by_the_accuracy_gate_exits_1_again_until_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: a first count, then a recount where 3 of 12 items differ (75 %)
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    write_base(landing)
    _counts(landing, "a_first.csv", "2026-11-20T00:00:00Z", FIRST)
    _counts(landing, "b_recount.csv", "2026-11-22T00:00:00Z", RECOUNT)
    monkeypatch.setenv("BACKORDERS_STOCK_MIN_ROW_RATIO", "0")
    run = ["run", "--landing", str(landing), "--db", str(db), "--as-of", "2026-11-23T06:00:00Z"]

    # Act: the run, the same run again, an override, the same run a third time
    first = main(run)
    first_err = capsys.readouterr().err
    again = main(run)
    again_err = capsys.readouterr().err
    accepted = main(
        ["accept-inventory", "--db", str(db), "--reason", "recount checked", "--by", "ops"]
    )
    capsys.readouterr()
    third = main(run)
    third_out = capsys.readouterr().out

    # Assert
    assert (first, again, accepted, third) == (1, 1, 0, 0)
    assert "inventory accuracy 75.0% is below the configured minimum" in again_err
    assert _stopped(again_err) == _stopped(first_err)
    assert "(override 1 by ops: applied)" in third_out
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select status from runs order by started_at").fetchall() == [
            ("blocked",),
            ("blocked",),
            ("succeeded",),
        ]
    assert main(["verify-audit", "--db", str(db)]) == 0
