"""Bad command-line input gets a clear message and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from backorders.cli import main
from tests import cli_process as cp

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


# --- the real command in a subprocess: one clear line, the documented exit code, no traceback


def _one_clear_line(r: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], r.stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment for the subprocess (no Prefect server is started by these)."""
    return cp.clean_env(tmp_path / "prefect-home")


@pytest.mark.parametrize(
    ("variable", "write", "text"),
    [
        ("BACKORDERS_SETTINGS_FILE", "min_inventory_accuracy = [", "is not valid TOML"),
        ("BACKORDERS_SETTINGS_FILE", None, "cannot be read: No such file or directory"),
        ("BACKORDERS_PRIORITY_KEY", "nope", "BACKORDERS_PRIORITY_KEY cannot be read"),
    ],
    ids=["toml-syntax-error", "missing-settings-file", "priority-key-not-json"],
)
def test_unreadable_settings_are_one_line_and_exit_2(
    variable: str, write: str | None, text: str, tmp_path: Path, env: dict[str, str]
) -> None:
    value = write or ""
    if variable == "BACKORDERS_SETTINGS_FILE":
        path = tmp_path / "settings.toml"
        if write is not None:
            path.write_text(write)
        value = str(path)
    env[variable] = value
    for args in (
        ["run", "--landing", str(tmp_path), "--db", str(tmp_path / "db.duckdb")],
        ["status", "SO-1", "--db", str(tmp_path / "db.duckdb")],
    ):
        r = cp.run(args, env)
        _one_clear_line(r, 2, text)
        assert r.stderr.startswith("backorders: invalid settings: ")


READERS = [
    ["status", "SO-1"],
    ["explain", "SO-1"],
    ["emails"],
    ["verify-audit"],
]


def _bad_dbs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    directory = tmp_path / "a-directory.duckdb"
    directory.mkdir()
    not_db = tmp_path / "notes.duckdb"
    not_db.write_text("these are notes, not a database\n" * 200)
    return {
        "directory": (directory, "is a directory, not a DuckDB file"),
        "not-a-database": (not_db, "is not a DuckDB database file"),
    }


def test_unusable_db_is_one_line_and_exit_2_for_run_and_every_reader(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "landing").mkdir()
    for db, text in _bad_dbs(tmp_path).values():
        _one_clear_line(
            cp.run(["run", "--landing", str(tmp_path / "landing"), "--db", str(db)], env), 2, text
        )
        for reader in READERS:
            _one_clear_line(cp.run([*reader, "--db", str(db)], env), 2, text)


def test_db_locked_by_another_process_is_one_line_and_exit_1(
    tmp_path: Path, env: dict[str, str]
) -> None:
    from backorders.adapters import store

    db = tmp_path / "db.duckdb"
    store.connect(db).close()
    (tmp_path / "landing").mkdir()
    # another program (not backorders) has the file open for writing
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); "
            "print('open', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        r = cp.run(["run", "--landing", str(tmp_path / "landing"), "--db", str(db)], env)
        _one_clear_line(r, 1, "is in use by another process")
        for reader in READERS:
            _one_clear_line(cp.run([*reader, "--db", str(db)], env), 1, "in use by another process")
    finally:
        holder.kill()
        holder.wait()


def _damaged_copy(tmp_path: Path) -> Path:
    """A database with data, and 64 KiB of random bytes written inside a data block."""
    from backorders.adapters import store

    db = tmp_path / "damaged.duckdb"
    with store.connect(db) as con:
        con.execute(
            "insert into quarantine select 'r1', 'orders', 'orders.csv', range, "
            "md5(range::varchar) || repeat('x', 50), 'bad' from range(100000)"
        )
        con.execute("checkpoint")
        block = con.execute(
            "select max(block_id) from pragma_storage_info('quarantine') where block_id >= 0"
        ).fetchone()
    assert block is not None
    # DuckDB's file: a 4 KiB main header, two 4 KiB database headers, 256 KiB blocks
    offset = 3 * 4096 + block[0] * 262_144 + 1_000
    with db.open("r+b") as fh:
        fh.seek(offset)
        fh.write(os.urandom(64 * 1024))
    with (
        duckdb.connect(str(db), read_only=True) as con,
        pytest.raises(duckdb.Error, match="checksum"),
    ):
        con.execute("select * from quarantine").fetchall()  # the damage is real
    return db


def test_damaged_database_stops_the_run_and_fails_verify_audit(
    tmp_path: Path, env: dict[str, str]
) -> None:
    db = _damaged_copy(tmp_path)
    (tmp_path / "landing").mkdir()
    text = "database damaged: restore from backup (see docs/operations.md"

    run = cp.run(["run", "--landing", str(tmp_path / "landing"), "--db", str(db)], env)
    _one_clear_line(run, 1, text)
    assert "table quarantine" in run.stderr
    _one_clear_line(cp.run(["verify-audit", "--db", str(db)], env), 1, text)
