"""The artifacts' rows and the retry rule, without a Prefect API."""

from __future__ import annotations

import pytest

from backorders import interrupt, pipeline
from backorders import ops_artifacts as oa
from backorders.adapters import store
from backorders.settings import InvalidSettings

pytestmark = pytest.mark.integration


def test_progress_moves_through_the_stages_and_never_back() -> None:
    p = oa.Progress()
    assert p.enter("ingest") == 2.0
    assert p.note("[1/2] orders/a.csv: loaded 10 rows") == 21.0
    assert p.note("    warning: extra column") is None
    assert p.note("[2/2] stock/b.csv: loaded 3 rows") == 40.0
    p.enter("communicate")
    assert p.note("sent 50/100 messages") == 89.5
    p.enter("ingest")  # a retried stage starts again: the bar does not go back
    assert p.percent == 89.5


def test_run_summary_links_every_other_artifact_by_key() -> None:
    md = oa.links_markdown("http://127.0.0.1:4200")
    for key in oa.LINKED:
        assert f"(http://127.0.0.1:4200/artifacts/key/{key})" in md
    assert all(f"`{key}`" in oa.links_markdown(None) for key in oa.LINKED)


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (pipeline.GateClosed("accuracy below threshold"), False),
        (interrupt.Interrupted(15), False),
        (store.DatabaseDamaged("db.duckdb", "bad block"), False),
        (InvalidSettings("bad setting"), False),
        (ValueError("BACKORDERS_FROM_EMAIL is required"), False),
        (KeyError("a bug"), False),
        (OSError("landing file briefly unreadable"), True),
    ],
)
def test_only_transient_errors_are_retried(exc: BaseException, retried: bool) -> None:
    from prefect.states import Failed

    from tasks.cycle import TransientSendFailures, retry_safe

    assert retry_safe(None, None, Failed(data=exc)) is retried  # type: ignore[arg-type]
    assert retry_safe(None, None, Failed(data=TransientSendFailures("3 failed"))) is True  # type: ignore[arg-type]


def test_sendgrid_api_key_variable_wins_over_the_secret_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from backorders.settings import load_settings

    monkeypatch.setenv("BACKORDERS_SENDGRID_SECRET_BLOCK", "no-such-block")
    assert load_settings().sending_enabled  # the block alone turns sending on
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.from-the-environment")
    settings = load_settings()
    # the block is never loaded (there is no Prefect API here): the variable is used
    assert settings.sendgrid_key() == "SG.from-the-environment"
    assert settings.public_dict()["sendgrid_api_key"] == "set"
    assert "SG.from-the-environment" not in repr(settings)


def test_table_cells_the_ui_would_draw_as_markdown_blocks_are_rewritten() -> None:
    rows = [
        {"bucket": ">60", "min_days": 61, "max_days": None, "failed_expectations": "-"},
        {"bucket": "31-60", "min_days": 31, "max_days": 60, "failed_expectations": "a, b"},
    ]

    shown = oa.ui_rows(rows)

    assert shown == [
        {"bucket": "over 60", "min_days": 61, "max_days": None, "failed_expectations": "none"},
        rows[1],
    ]
