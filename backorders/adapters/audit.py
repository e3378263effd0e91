"""The append-only, hash-chained audit log.

Each row's hash is sha256(prev_hash + canonical JSON of the row's own fields), so
editing or deleting any row breaks the chain from that row on; `verify` finds it.
Rows are appended inside the caller's transaction, beside the change they record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    """One state change to record."""

    event: str
    entity: str
    entity_id: str
    details: dict[str, Any]


def _canonical(
    seq: int, logged_at: str, run_id: str | None, ev: str, entity: str, eid: str, details: str
) -> str:
    return json.dumps(
        [seq, logged_at, run_id, ev, entity, eid, details],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _row_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _ts(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def append(
    con: duckdb.DuckDBPyConnection,
    run_id: str | None,
    events: Iterable[AuditEvent],
    *,
    logged_at: datetime,
) -> int:
    """Append events to the chain (inside the caller's transaction); return how many."""
    last = con.execute("select seq, hash from audit_log order by seq desc limit 1").fetchone()
    seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
    at = _ts(logged_at.astimezone(UTC))
    cols: dict[str, list[Any]] = {
        k: []
        for k in ("seq", "run_id", "event", "entity", "entity_id", "details", "prev_hash", "hash")
    }
    for ev in events:
        seq += 1
        details = json.dumps(ev.details, sort_keys=True, separators=(",", ":"), default=str)
        h = _row_hash(prev, _canonical(seq, at, run_id, ev.event, ev.entity, ev.entity_id, details))
        for k, v in (
            ("seq", seq),
            ("run_id", run_id),
            ("event", ev.event),
            ("entity", ev.entity),
            ("entity_id", ev.entity_id),
            ("details", details),
            ("prev_hash", prev),
            ("hash", h),
        ):
            cols[k].append(v)
        prev = h
    n = len(cols["seq"])
    if n == 0:
        return 0
    batch = pa.table(cols)  # noqa: F841  (read by DuckDB's replacement scan below)
    con.execute(
        "insert into audit_log (seq, logged_at, run_id, event, entity, entity_id, details, "
        "prev_hash, hash) select seq, $at::timestamptz, run_id, event, entity, entity_id, "
        "details::json, prev_hash, hash from batch order by seq",
        {"at": at},
    )
    return n


def append_staged(
    con: duckdb.DuckDBPyConnection, run_id: str | None, *, logged_at: datetime
) -> int:
    """Append the rows of temp table audit_staged to the chain, set-based; return how many.

    audit_staged holds (ord numbered 1..n, event, entity, entity_id, details as JSON), as
    a statement under sql/ builds it; sql/audit/staged_canonical.sql builds the text each
    hash covers, so Python only folds the chain (one sha256 a row, which no set-based
    statement can do: each hash takes the one before it). The rows are those `append`
    would write for the same events, and `verify` checks them the same way.
    """
    from backorders.adapters import store  # local: store imports nothing from here

    n, dense = con.execute(
        "select count(*), count(*) = coalesce(max(ord), 0) and count(distinct ord) = count(*) "
        "from audit_staged"
    ).fetchone() or (0, True)
    if not dense:
        raise ValueError("audit_staged.ord must number its rows 1..n")
    if n:
        last = con.execute("select seq, hash from audit_log order by seq desc limit 1").fetchone()
        last_seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        at = _ts(logged_at.astimezone(UTC))
        rows = store.run(
            con,
            "audit/staged_canonical",
            {
                "last_seq": last_seq,
                "logged_at_json": json.dumps(at),
                "run_id_json": json.dumps(run_id, ensure_ascii=False),
            },
        ).fetchall()
        ords, prevs, hashes = [], [], []
        for ord_, canonical, fields in rows:
            text = canonical or _canonical(last_seq + ord_, at, run_id, *fields)
            h = _row_hash(prev, text)
            ords.append(ord_)
            prevs.append(prev)
            hashes.append(h)
            prev = h
        chain = pa.table({"ord": ords, "prev_hash": prevs, "hash": hashes})  # noqa: F841
        con.execute(
            "insert into audit_log (seq, logged_at, run_id, event, entity, entity_id, details, "
            "prev_hash, hash) select $last_seq + s.ord, $at::timestamptz, $run_id, s.event, "
            "s.entity, s.entity_id, s.details, c.prev_hash, c.hash "
            "from audit_staged as s join chain as c using (ord) order by s.ord",
            {"last_seq": last_seq, "at": at, "run_id": run_id},
        )
    con.execute("drop table audit_staged")
    return int(n)


def verify(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Recompute the chain; return one message per broken, missing or edited row (empty = intact)."""
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    cur = con.execute(
        "select seq, logged_at, run_id, event, entity, entity_id, details::varchar, prev_hash, hash "
        "from audit_log order by seq"
    )
    while True:
        rows: Sequence[tuple[Any, ...]] = cur.fetchmany(50_000)
        if not rows:
            break
        for seq, logged_at, run_id, ev, entity, eid, details, prev_hash, h in rows:
            if seq != expected_seq:
                problems.append(f"seq {expected_seq}..{seq - 1}: rows missing (deleted?)")
            if prev_hash != prev:
                problems.append(f"seq {seq}: prev_hash does not match the row before it")
            canonical = _canonical(seq, _ts(logged_at), run_id, ev, entity, eid, details)
            if _row_hash(prev_hash, canonical) != h:
                problems.append(f"seq {seq}: content does not match its hash (edited?)")
            prev = h
            expected_seq = seq + 1
    problems.extend(_verify_digests(con))
    return problems


# Events whose details carry a digest of rows kept elsewhere: the statement that recomputes
# it (with $run_id), and what those rows are.
_DIGESTS = {
    "allocation_decisions": (
        "allocate/decisions_digest",
        "the allocation decisions of run {run} (promise_changes, allocations)",
    ),
    "messages_queued": (
        "outbox/queued_digest",
        "the messages queued by run {run} (outbox, outbox_emails; what sending never changes)",
    ),
}


def _verify_digests(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Recompute each audited digest (allocation decisions, queued messages) from its rows.

    A run's messages_queued digest covers all its queued rows so far, so the last such
    event of a run is the one to match (a run queues once; a retry adds to it).
    """
    from backorders.adapters import store  # local: store imports nothing from here

    problems = []
    rows = con.execute(
        "select seq, event, run_id, json_extract_string(details, '$.digest') from audit_log "
        "where event in ('allocation_decisions', 'messages_queued') "
        "qualify event = 'allocation_decisions' "
        "or seq = max(seq) over (partition by event, run_id) order by seq"
    ).fetchall()
    for seq, event, run_id, digest in rows:
        statement, what = _DIGESTS[event]
        now = store.run(con, statement, {"run_id": run_id}).fetchone()
        if now is None or now[0] != digest:
            problems.append(
                f"seq {seq}: {what.format(run=run_id)} no longer match their audited digest "
                "(edited or deleted?)"
            )
    return problems
