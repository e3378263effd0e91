"""Bad command-line input gets a clear message and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from backorders.cli import main

pytestmark = pytest.mark.integration


def test_run_on_a_missing_landing_zone_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["run", "--landing", str(tmp_path / "nope"), "--db", str(tmp_path / "x.duckdb")]) == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_as_of_without_timezone_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--landing", str(tmp_path), "--as-of", "2026-11-23T06:00:00"])
    assert exc.value.code == 2
    assert "needs a timezone" in capsys.readouterr().err


def test_status_without_a_database_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "SO-1", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "no database" in capsys.readouterr().err


def test_status_of_an_unknown_order_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from backorders.adapters import store

    store.connect(tmp_path / "db.duckdb").close()
    assert main(["status", "SO-404", "--db", str(tmp_path / "db.duckdb")]) == 1
    assert "unknown order" in capsys.readouterr().err


def test_settings_repr_and_public_dict_hide_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from backorders.settings import load_settings

    monkeypatch.setenv("SENDGRID_API_KEY", "SG.very-secret")
    s = load_settings()
    assert s.sending_enabled
    assert "SG.very-secret" not in repr(s) and "SG.very-secret" not in str(s.public_dict())


def test_invalid_setting_from_the_environment_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from backorders.settings import load_settings

    monkeypatch.setenv("BACKORDERS_PRIORITY_KEY", '["customer_tier", "shoe_size"]')
    with pytest.raises(ValidationError, match="priority_key"):
        load_settings()


def test_memory_limit_that_is_not_a_size_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pydantic import ValidationError

    from backorders.adapters import store
    from backorders.settings import load_settings

    monkeypatch.setenv("BACKORDERS_MEMORY_LIMIT", "lots")
    with pytest.raises(ValidationError, match="memory_limit"):
        load_settings()
    # the store refuses it too (it is pasted into a SET statement)
    with pytest.raises(store.StoreError, match="not a size"):
        store.connect(tmp_path / "x.duckdb", memory_limit="1GB'; drop table runs; --")
    # the run command says so in one line and exits 2
    assert main(["run", "--landing", str(tmp_path), "--db", str(tmp_path / "y.duckdb")]) == 2
    assert "memory_limit" in capsys.readouterr().err


def test_memory_limit_is_applied_to_duckdb(tmp_path: Path) -> None:
    from backorders.adapters import store

    with store.connect(tmp_path / "x.duckdb", memory_limit="512MB") as con:
        limit = con.execute("select current_setting('memory_limit')").fetchone()
    assert limit is not None and limit[0] in {"512.0 MiB", "488.2 MiB", "512.0 MB"}
