"""The supplier-delay rerun flow under a real Prefect API (the package's test server)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from backorders import pipeline
from backorders.devtools.demo_data import DemoSpec, generate
from backorders.settings import load_settings
from flows.supplier_delay import supplier_delay_rerun

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a real `prefect server start`: .ci/run runs them
SPEC = DemoSpec(seed=5)


def test_the_rerun_refuses_an_unknown_supplier_with_a_readable_failed_state(
    tmp_path: Path,
) -> None:
    landing, db = tmp_path / "landing", tmp_path / "db.duckdb"
    generate(landing, SPEC)
    pipeline.ingest_stage(load_settings(landing=landing, db=db), "r1", SPEC.as_of, print)

    state = supplier_delay_rerun(
        supplier_id="backorders.supplier.SUP-99",
        new_date=SPEC.as_of.date() + timedelta(days=30),
        landing=str(landing),
        db=str(db),
        return_state=True,
    )

    assert state.is_failed()
    assert state.message.startswith("unknown supplier 'SUP-99': no purchase order")
    assert "SUP-01" in state.message and "nothing was changed" in state.message
    assert not list((landing / "supplier_updates").glob("delay-*"))
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone() == (0,)
