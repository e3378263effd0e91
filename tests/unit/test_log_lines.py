"""Log lines ops read in the Prefect UI's Logs tab say their figures in words, not as dicts."""

from __future__ import annotations

import pytest

from backorders import supplier_delay as sd
from backorders.report import counts_text, plan_text

pytestmark = pytest.mark.unit


def test_counts_by_status_are_written_as_words_not_as_a_dict() -> None:
    counts = {"allocated": 799, "partially_allocated": 4, "not_backorderable": 80}

    assert counts_text(counts) == "799 allocated, 4 partially allocated, 80 not backorderable"
    assert counts_text({}) == "none"


def test_the_rerun_says_how_many_delay_events_came_from_outside_and_from_our_ingest() -> None:
    outside_only = sd.window_text("SUP-03", 1, 1, [])
    mixed = sd.window_text("SUP-03", 3, 1, ["20261123T060000Z-b6f2da58"])
    own_only = sd.window_text("SUP-04", 2, 0, ["R1", "R2"])

    assert outside_only == "1 delay event(s) of SUP-03 in the window: 1 from outside"
    assert mixed == (
        "3 delay event(s) of SUP-03 in the window: 1 from outside, 2 from our own ingest "
        "(run(s) 20261123T060000Z-b6f2da58, which re-promised already)"
    )
    assert own_only.endswith(
        "0 from outside, 2 from our own ingest (run(s) R1, R2, which re-promised already)"
    )


def test_the_allocation_line_names_the_triggers_that_fired_and_why_a_run_was_full() -> None:
    incremental = {
        "mode": "incremental",
        "skus_reallocated": 12,
        "by_trigger": {"order_lines": 0, "orders": 7, "supply": 5},
    }
    nothing = {"mode": "incremental", "skus_reallocated": 0, "by_trigger": {"orders": 0}}
    full = {"mode": "full", "skus_reallocated": 120, "why": "requested (--full)"}

    assert plan_text(incremental) == "incremental, 12 sku(s) reallocated (7 orders, 5 supply)"
    assert plan_text(nothing) == "incremental, 0 sku(s) reallocated (no input changed)"
    assert plan_text(full) == "full, 120 sku(s): requested (--full)"
    assert plan_text(None) == "-"
