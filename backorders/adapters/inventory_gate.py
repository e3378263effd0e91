"""The inventory accuracy gate: judge the stock the allocation will use, remember the decision.

The gate used to judge only the counts loaded in the run at hand, so a rerun with no
new file (or a run after one that died during its validation) found nothing to judge
and allocated on the very stock that had closed the gate. Now:

- every count is judged once, by the first validation that sees it
  (sql/marts/inventory_accuracy.sql: the counts not judged yet, whichever run loaded them);
- the gate judges the *stock basis*: per location and sku the count book stock starts
  from, with its judgment (sql/marts/inventory_basis.sql). No new count, same basis,
  same decision: a closed gate stays closed;
- new counts replace their location/sku's basis and are judged, so a recount opens it;
- a person can accept the stock as counted (`backorders accept-inventory`): an audited
  override that the next validation uses once, only if the inaccurate counts are still
  the ones that were accepted.

Every decision is a row of inventory_gate and an audit event; so is every override.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import duckdb

from backorders.adapters import audit, store
from backorders.settings import Settings


class GateNotClosed(RuntimeError):
    """An override was asked for, but the last decision of the gate was not 'closed'."""


@dataclass(frozen=True)
class Basis:
    """How accurate the stock basis is: judged counts, inaccurate ones, and which."""

    judged_items: int
    inaccurate_items: int
    basis_digest: str
    examples: tuple[tuple[str, str, int, int], ...]  # (location, sku, book, counted)

    @property
    def accuracy(self) -> float | None:
        """The share of accurate counts, or None when no count of the basis was judged."""
        if not self.judged_items:
            return None
        return (self.judged_items - self.inaccurate_items) / self.judged_items


@dataclass(frozen=True)
class Decision:
    """One validation's verdict: open, closed or overridden, with what it rests on."""

    state: str
    accuracy: float | None
    judged_items: int
    inaccurate_items: int
    newly_judged: int
    message: str | None
    override: dict[str, Any] | None

    def summary(self) -> dict[str, Any]:
        """JSON-able, for the run summary and the audit log."""
        return asdict(self)


def judge_new_counts(con: duckdb.DuckDBPyConnection, run_id: str, settings: Settings) -> int:
    """Judge every count not judged yet against its book stock; return how many."""
    before = int(store.scalar(con, "select count(*) from inventory_accuracy"))
    store.run(
        con,
        "marts/inventory_accuracy",
        {
            "run_id": run_id,
            "tol_units": settings.accuracy_tolerance_units,
            "tol_pct": settings.accuracy_tolerance_pct,
        },
    )
    return int(store.scalar(con, "select count(*) from inventory_accuracy")) - before


def basis(con: duckdb.DuckDBPyConnection, *, examples: int = 5) -> Basis:
    """The accuracy of the current stock basis (the counts book stock starts from)."""
    judged, inaccurate, digest = store.run(con, "marts/inventory_basis").fetchall()[0]
    shown = store.run(con, "marts/inventory_basis_inaccurate", {"limit": examples}).fetchall()
    return Basis(
        int(judged),
        int(inaccurate),
        str(digest),
        tuple(
            (str(loc), str(sku), int(book), int(counted)) for loc, sku, _, book, counted in shown
        ),
    )


def _closed_message(b: Basis, settings: Settings) -> str:
    assert b.accuracy is not None
    items = ", ".join(f"{loc}/{sku} (book {book}, counted {n})" for loc, sku, book, n in b.examples)
    more = (
        f" and {b.inaccurate_items - len(b.examples)} more"
        if b.inaccurate_items > len(b.examples)
        else ""
    )
    return (
        f"inventory accuracy {b.accuracy:.1%} is below the configured minimum "
        f"{settings.min_inventory_accuracy:.1%} ({b.inaccurate_items} of {b.judged_items} "
        f"counted items of the stock basis differ from book stock: {items}{more}): allocation "
        "stopped so that no promise is made on wrong stock; it stays stopped until new counts "
        "of these items are loaded (they are judged), or a person accepts the stock as "
        "counted: backorders accept-inventory --db FILE --reason '...'. See table "
        "inventory_accuracy for the items; min_inventory_accuracy is a setting."
    )


def decide(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    settings: Settings,
    *,
    newly_judged: int,
    now: datetime,
) -> Decision:
    """Decide the gate for this run, use a pending override once, record and audit both."""
    b = basis(con)
    closed = b.accuracy is not None and b.accuracy < settings.min_inventory_accuracy
    pending = con.execute(
        "select override_id, by_name, reason, closed_run_id, basis_digest "
        "from inventory_gate_overrides where used_by_run is null "
        "order by override_id desc limit 1"
    ).fetchall()
    override: dict[str, Any] | None = None
    state = "closed" if closed else "open"
    if pending:
        oid, by, reason, closed_run, digest = pending[0]
        if not closed:
            outcome = "not_needed"
        elif digest == b.basis_digest:
            outcome, state = "applied", "overridden"
        else:
            outcome = "stale"  # the inaccurate counts changed since they were accepted
        override = {
            "override_id": oid,
            "by": by,
            "reason": reason,
            "closed_run_id": closed_run,
            "outcome": outcome,
        }
        # used once: every pending override is spent by this validation
        con.execute(
            "update inventory_gate_overrides set used_by_run = $r, used_at = $n, "
            "outcome = case when override_id = $o then $out else 'superseded' end "
            "where used_by_run is null",
            {"r": run_id, "n": now, "o": oid, "out": outcome},
        )
    message = _closed_message(b, settings) if closed else None
    if state == "closed" and override and override["outcome"] == "stale":
        message = (
            f"{message} (the override {override['override_id']} by {override['by']} accepted "
            "other inaccurate counts than the stock basis now holds: it was not applied)"
        )
    decision = Decision(
        state, b.accuracy, b.judged_items, b.inaccurate_items, newly_judged, message, override
    )
    con.execute(
        "insert into inventory_gate values ($r, $n, $s, $a, $j, $i, $m, $d, $o, $msg)",
        {
            "r": run_id,
            "n": now,
            "s": state,
            "a": b.accuracy,
            "j": b.judged_items,
            "i": b.inaccurate_items,
            "m": settings.min_inventory_accuracy,
            "d": b.basis_digest,
            "o": override["override_id"] if override else None,
            "msg": message,
        },
    )
    events = [audit.AuditEvent("inventory_gate", "run", run_id, decision.summary())]
    if override:
        events.append(
            audit.AuditEvent(
                f"inventory_override_{override['outcome']}",
                "inventory_gate_override",
                str(override["override_id"]),
                override | {"run_id": run_id},
            )
        )
    audit.append(con, run_id, events, logged_at=now)
    return decision


def record_override(
    con: duckdb.DuckDBPyConnection, *, by: str, reason: str, now: datetime
) -> dict[str, Any]:
    """Record a person's acceptance of the current closed gate (used once by the next run)."""
    last = con.execute(
        "select run_id, state, accuracy, inaccurate_items, judged_items, basis_digest "
        "from inventory_gate order by decided_at desc, run_id desc limit 1"
    ).fetchall()
    if not last or last[0][1] != "closed":
        what = (
            f"its last decision (run {last[0][0]}) was {last[0][1]}" if last else "no decision yet"
        )
        raise GateNotClosed(
            f"the inventory accuracy gate is not closed ({what}): nothing to accept"
        )
    run_id, _, accuracy, inaccurate, judged, digest = last[0]
    oid = int(
        store.scalar(con, "select coalesce(max(override_id), 0) + 1 from inventory_gate_overrides")
    )
    con.execute(
        "insert into inventory_gate_overrides (override_id, recorded_at, by_name, reason, "
        "closed_run_id, basis_digest, inaccurate_items) values ($o, $n, $b, $r, $c, $d, $i)",
        {"o": oid, "n": now, "b": by, "r": reason, "c": run_id, "d": digest, "i": inaccurate},
    )
    details = {
        "override_id": oid,
        "by": by,
        "reason": reason,
        "closed_run_id": run_id,
        "accuracy": accuracy,
        "inaccurate_items": inaccurate,
        "judged_items": judged,
    }
    audit.append(
        con,
        None,
        [
            audit.AuditEvent(
                "inventory_override_recorded", "inventory_gate_override", str(oid), details
            )
        ],
        logged_at=now,
    )
    return details
