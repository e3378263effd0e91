"""Ingest the landing zone: each file once (by SHA-256), in one transaction per file.

A file's good rows, its quarantined rows, its `ingested_files` row and its audit
event commit together, so a crash mid-file loses nothing: the file is simply
ingested again on the next run. A rejected file loads nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import duckdb

from backorders import interrupt
from backorders.adapters import audit, feed_rules, store
from backorders.adapters.feed_readers import (
    READERS,
    FileFacts,
    FileRejected,
    ReadResult,
    drop_temp,
    file_facts,
)
from backorders.domain.contract import FEED_ORDER, FEEDS, FORMATS, Feed
from backorders.settings import Settings

log = logging.getLogger(__name__)

# The reason recorded for a file that loaded with no data row.
EMPTY_FILE = "empty: the file holds no data rows"


@dataclass
class FileResult:
    """The fate of one landing file in this run."""

    feed: str
    path: str
    sha256: str
    # loaded (also with 0 rows: an empty file is recorded, never passed over), rejected,
    # duplicate (seen before: not recorded again)
    status: str
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)


def discover(landing: Path) -> tuple[list[tuple[Feed, Path]], list[str]]:
    """Landing files in load order (feed order, then name), and warnings for stray entries."""
    if not landing.is_dir():
        raise FileNotFoundError(f"landing zone {landing} does not exist or is not a folder")
    found, warnings = [], []
    for entry in sorted(landing.iterdir()):
        if entry.is_dir() and entry.name not in FEEDS:
            warnings.append(f"{entry}: not a feed folder (feeds: {', '.join(FEED_ORDER)}); ignored")
    for name in FEED_ORDER:
        folder = landing / name
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_file() and p.suffix.lower() in FORMATS:
                found.append((FEEDS[name], p))
            elif p.is_file():
                warnings.append(f"{p}: not .csv, .jsonl or .parquet; ignored")
    return found, warnings


def ingest_landing(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    *,
    run_id: str,
    as_of: datetime,
    settings: Settings,
    now: Callable[[], datetime],
    progress: Callable[[str], None] = log.info,
) -> list[FileResult]:
    """Ingest every new file of the landing zone in load order; return each file's fate."""
    files, warnings = discover(landing)
    for w in warnings:
        progress(w)
    results = []
    for i, (feed, path) in enumerate(files, 1):
        interrupt.check()  # stop between files: each file is its own transaction
        res = ingest_file(con, feed, path, run_id=run_id, as_of=as_of, settings=settings, now=now)
        results.append(res)
        detail = f"{res.rows_loaded} rows loaded, {res.rows_quarantined} quarantined"
        if res.status == "rejected":
            detail = f"REJECTED: {res.reason}"
        elif res.status == "duplicate":
            detail = res.reason or res.status
        elif res.reason:
            detail += f" ({res.reason})"
        progress(f"[{i}/{len(files)}] {feed.name}/{path.name}: {detail}")
        for w in res.warnings:
            progress(f"    warning: {w}")
    return results


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    path: Path,
    *,
    run_id: str,
    as_of: datetime,
    settings: Settings,
    now: Callable[[], datetime],
) -> FileResult:
    """Ingest one file: load its good rows, quarantine the bad, or reject it whole."""
    ext = path.suffix.lower()
    before = _stamp(path)
    facts = file_facts(path, check_text=ext != ".parquet")
    seen = store.scalar(
        con, "select status from ingested_files where sha256 = $s", {"s": facts.sha256}
    )
    res = FileResult(feed.name, str(path), facts.sha256, "duplicate")
    if seen is not None:
        res.reason = f"already ingested (same SHA-256, status {seen}): skipped"
        return res
    with store.transaction(con):
        try:
            _load(con, feed, path, facts, res, run_id=run_id, as_of=as_of, settings=settings)
            if _stamp(path) != before:
                # the checks and the merge each read the file (a Parquet file is not
                # copied): rows checked in one read must be the rows loaded by another
                raise FileRejected(
                    "the file changed while it was being ingested (still being written?): "
                    "nothing of it was loaded; drop it again once it is complete"
                )
        except FileRejected as exc:
            # Nothing of a rejected file loads: undo its partial work but keep the record.
            con.execute("rollback")
            con.execute("begin transaction")
            res.status, res.reason = "rejected", str(exc)
            res.rows_loaded = res.rows_quarantined = 0
        _record(con, res, run_id=run_id, now=now())
    return res


def _stamp(path: Path) -> tuple[int, int]:
    """Size and modification time: what tells that a file changed between two reads."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _load(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    path: Path,
    facts: FileFacts,
    res: FileResult,
    *,
    run_id: str,
    as_of: datetime,
    settings: Settings,
) -> None:
    ext = path.suffix.lower()
    # a JSONL file of no record is complete as it is; a CSV without its header and a
    # Parquet file without its footer are not files of the feed at all
    if facts.size == 0 and ext != ".jsonl":
        raise FileRejected("empty file (0 bytes)")
    if not facts.utf8:
        raise FileRejected(f"not UTF-8 text ({facts.utf8_error}); export the file as UTF-8")
    read = READERS[ext](con, feed, path, facts)
    res.warnings.extend(read.warnings)
    if read.rows == 0:
        if feed.name == "stock":
            raise FileRejected("empty stock snapshot: no rows")
        # recorded as loaded with 0 rows (ingested_files, audit, run summary): an
        # operator sees that the file arrived and held nothing
        res.status, res.reason = "loaded", EMPTY_FILE
        return
    if ext != ".parquet":
        _check_rows(
            con, feed, path, facts, res, read, run_id=run_id, as_of=as_of, settings=settings
        )
        return
    try:
        _check_rows(
            con, feed, path, facts, res, read, run_id=run_id, as_of=as_of, settings=settings
        )
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        # a view over the file reads its data only now: a broken page shows here
        raise FileRejected(f"unreadable Parquet data: {str(exc).splitlines()[0]}") from exc


def _check_rows(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    path: Path,
    facts: FileFacts,
    res: FileResult,
    read: ReadResult,
    *,
    run_id: str,
    as_of: datetime,
    settings: Settings,
) -> None:
    """Type and check `_raw`, quarantine the bad rows, merge the good ones into the table.

    Set-based, in a few passes: the typed rows with their reasons (`_typed`, a view
    when `_raw` is a view over a Parquet file, else a table), the repeated keys
    (one hash aggregate), the cross-table rules (anti-joins), then one MERGE of the
    rows that broke no rule. Only the bad rows (`_bad`, usually few) are ever
    rendered as text for the quarantine.
    """
    drop_temp(con, "_typed", "_valid", "_good")
    # a view over a Parquet file (reading it again is cheaper than a copy); a table
    # for text, whose parsing (regular expressions) is worth doing once
    parquet = path.suffix.lower() == ".parquet"
    con.execute(feed_rules.typed_sql(feed, read.native, view=parquet, tiers=settings.tiers))
    if not parquet and not facts.ends_with_newline:
        _check_last_record(con, facts)
    # 1. row rules (types, required, choices, ranges): one pass over every column
    con.execute(
        "create or replace temp table _bad as "
        "select row_number, _reject_reason as reason from _typed where _broken"
    )
    broken = int(store.scalar(con, "select count(*) from _bad"))
    # the rows the key and cross-table rules apply to (usually all: no filter at all)
    valid = "" if broken == 0 else " where row_number not in (select row_number from _bad)"
    con.execute(f"create temp view _valid as select * from _typed{valid}")
    # 2. a key repeated in the file; 3. references to other tables, the ETA horizon,
    # over-shipments
    con.execute(f"insert into _bad {feed_rules.duplicate_key_sql(feed)}")
    # 4. implausible values (settings: the timestamp window, the largest quantities)
    for rules in (feed_rules.rules_sql(feed), feed_rules.bounds_sql(feed)):
        if rules:
            params = _rule_params(settings, as_of)
            con.execute(
                f"insert into _bad {rules}", {k: v for k, v in params.items() if f"${k}" in rules}
            )
    bad_rows = int(store.scalar(con, "select count(distinct row_number) from _bad"))
    keep = "" if bad_rows == 0 else " where row_number not in (select row_number from _bad)"
    con.execute(
        f"create temp view _good as select * exclude (_broken, _reject_reason) from _typed{keep}"
    )
    if feed.name == "stock":
        _check_stock_snapshot(con, settings)
    if bad_rows:
        # the record text is made here, after the join: only for the quarantined rows
        con.execute(
            "insert into quarantine (run_id, feed, file, row_number, raw, reason) "
            f"select $run, $feed, $file, s.row_number, {read.raw_expr}, b.reason "
            "from (select row_number, string_agg(reason, '; ' order by reason) as reason "
            "      from _bad group by row_number) as b "
            f"join {read.raw_source} as s using (row_number)",
            {"run": run_id, "feed": feed.name, "file": str(path)},
        )
    res.rows_quarantined = bad_rows
    res.rows_loaded = read.rows - bad_rows
    empty = not con.execute(f"select 1 from {feed.name} limit 1").fetchall()
    params: dict[str, object] = {"sha": facts.sha256}
    own_key = feed_rules.OWN_KEYS.get(feed.name)
    if own_key:
        # new rows are numbered after every key so far: one file, one transaction
        params["key_base"] = int(
            store.scalar(con, f"select coalesce(max({own_key}), 0) from {feed.name}")
        )
    con.execute(feed_rules.merge_sql(feed, empty=empty), params)
    if feed.name == "stock":
        con.execute(
            "insert into stock_counts select location_id, sku, on_hand, as_of, $sha, $run from _good",
            {"sha": facts.sha256, "run": run_id},
        )
    res.status = "loaded"


def _rule_params(settings: Settings, as_of: datetime) -> dict[str, object]:
    """The parameters the rule statements may bind (each takes the ones it names)."""
    params: dict[str, object] = {
        "as_of": as_of,
        "latest": as_of + timedelta(days=settings.max_future_days),
        "earliest": datetime.combine(settings.earliest_date, time(), tzinfo=UTC),
        "max_future_days": settings.max_future_days,
    }
    params.update({name: getattr(settings, name) for name in feed_rules.BOUND_SETTINGS})
    return params


def _check_last_record(con: duckdb.DuckDBPyConnection, facts: FileFacts) -> None:
    """A text file that stops without a newline in a malformed record was cut off."""
    reason = store.scalar(
        con,
        "select _reject_reason from _typed where _reject_reason is not null "
        "and row_number = (select max(row_number) from _typed)",
    )
    if reason:
        raise FileRejected(
            f"truncated: the last line ({facts.lines}) does not end with a newline and is not a "
            f"valid record ({reason}): a cut-off export? nothing of it was loaded"
        )


def _check_stock_snapshot(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    n = store.scalar(con, "select count(*) from _good")
    if n == 0:
        raise FileRejected("empty stock snapshot: no usable rows (every row was quarantined)")
    cut = store.run(con, "ingest/stock_cutoff", {"ratio": settings.stock_min_row_ratio}).fetchall()
    if cut:
        parts = [f"{loc} has {new} rows, the previous snapshot had {old}" for loc, new, old in cut]
        raise FileRejected(
            "stock snapshot looks cut off: "
            + "; ".join(parts)
            + f" (fewer than {settings.stock_min_row_ratio:.0%}); nothing of it was loaded"
        )


def _record(con: duckdb.DuckDBPyConnection, res: FileResult, *, run_id: str, now: datetime) -> None:
    con.execute(
        "insert into ingested_files values ($sha, $feed, $path, $loaded, $quar, $status, $reason, "
        "$run, $now)",
        {
            "sha": res.sha256,
            "feed": res.feed,
            "path": res.path,
            "loaded": res.rows_loaded,
            "quar": res.rows_quarantined,
            "status": res.status,
            "reason": res.reason,
            "run": run_id,
            "now": now,
        },
    )
    details = {k: v for k, v in asdict(res).items() if k not in ("feed", "sha256")}
    audit.append(
        con,
        run_id,
        [audit.AuditEvent(f"file_{res.status}", f"feed:{res.feed}", res.sha256, details)],
        logged_at=now,
    )
