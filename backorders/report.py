"""Human summaries of a run: markdown for the Prefect UI, plain text for the terminal."""

from __future__ import annotations

from typing import Any


def _get(d: dict[str, Any], *path: str, default: Any = 0) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def _gate_note(gate: dict[str, Any]) -> str:
    """How the accuracy gate decided, when a person's override was involved."""
    o = gate.get("override") if isinstance(gate, dict) else None
    if not o:
        return ""
    return f" (override {o['override_id']} by {o['by']}: {o['outcome']})"


def _delays(d: dict[str, Any]) -> str:
    """The PO lines this run's supplier updates delayed (each one a Prefect event)."""
    if not d or not d.get("po_lines"):
        return "none"
    return (
        f"{d['po_lines']} PO line(s) of {len(d.get('suppliers', []))} supplier(s) later or cut "
        f"({d.get('events_emitted', 0)} backorders.supplier.delayed events)"
    )


def counts_text(counts: dict[str, int]) -> str:
    """Counts by name as words for a log line: "799 allocated, 4 partially allocated"."""
    return ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items()) or "none"


def _replenishment(r: dict[str, Any]) -> str:
    """The replenish stage's headline: how many sku/locations to reorder, and how much."""
    if not r:
        return "-"
    return (
        f"{r.get('below_reorder_point', 0)} sku/location(s) below their reorder point "
        f"({r.get('skus_to_order', 0)} skus), {r.get('suggested_units', 0)} units suggested "
        f"at a {float(r.get('service_level', 0)):.0%} service level; read them: backorders replenish"
    )


def plan_text(plan: dict[str, Any] | None) -> str:
    """How the allocation went: incremental (skus reallocated, by trigger) or full, and why."""
    if not plan:
        return "-"
    if plan.get("mode") == "incremental":
        by = {k: n for k, n in (plan.get("by_trigger") or {}).items() if n}
        return f"incremental, {plan.get('skus_reallocated', 0)} sku(s) reallocated" + (
            f" ({counts_text(by)})" if by else " (no input changed)"
        )
    return f"full, {plan.get('skus_reallocated', 0)} sku(s): {plan.get('why')}"


def summary_lines(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline figures of a run as (label, value) pairs."""
    status = _get(s, "allocate", "lines_by_status", default={})
    backordered = sum(status.get(k, 0) for k in ("promised", "unpromised", "partially_allocated"))
    acc = _get(s, "validate", "inventory_accuracy", default=None)
    files = _get(s, "ingest", "files", default={})
    weeks = _get(s, "allocate", "promised_lines_by_week", default=[])
    comm = _get(s, "communicate", default={})
    return [
        ("run", f"{s.get('run_id')} ({s.get('status', 'running')})"),
        ("files", ", ".join(f"{n} {k}" for k, n in sorted(files.items())) or "none new"),
        ("rows loaded", str(_get(s, "ingest", "rows_loaded"))),
        ("rows quarantined", str(_get(s, "ingest", "rows_quarantined"))),
        ("supplier delays", _delays(_get(s, "supplier_delays", default={}))),
        (
            "inventory accuracy",
            f"{acc:.1%} of {_get(s, 'validate', 'recounted_items')} recounted items"
            + _gate_note(_get(s, "validate", "gate", default={}))
            if acc is not None
            else "no recounted item in the stock basis",
        ),
        ("allocation", plan_text(_get(s, "allocate", "plan", default=None))),
        ("lines backordered", str(backordered)),
        ("lines filled from stock", str(status.get("allocated", 0))),
        ("  partially from stock", str(status.get("partially_allocated", 0))),
        ("lines promised from POs", str(status.get("promised", 0))),
        ("  promised by week", ", ".join(f"{w}: {n}" for w, n in weeks) or "-"),
        ("lines unpromised", str(status.get("unpromised", 0))),
        ("not backorderable", str(status.get("not_backorderable", 0))),
        (
            "emails",
            (
                f"{comm.get('suppressed', 0)} messages recorded in the outbox, none sent "
                "(dry run: no SendGrid API key, or --dry-run); read them: backorders emails"
            )
            if comm.get("dry_run")
            else f"{comm.get('queued', 0)} queued, {comm.get('suppressed', 0)} suppressed, "
            f"{(comm.get('sent') or {}).get('sent', 0)} sent" + _send_failures(comm),
        ),
        ("replenishment", _replenishment(_get(s, "replenish", default={}))),
        *_payment_lines(_get(s, "payments", default={})),
    ]


def _payment_lines(p: dict[str, Any]) -> list[tuple[str, str]]:
    """The payments stage's headline: captures queued and their total, what was sent, renewals."""
    if not p:
        return []
    queued = (
        f"{p.get('captures_queued', 0)} capture(s) queued, total "
        f"{p.get('capture_total_text') or '0'}; {p.get('releases_queued', 0)} release(s)"
    )
    if p.get("dry_run"):
        queued += " (recorded, none sent: dry run, or no STRIPE_API_KEY)"
    else:
        sent = p.get("sent") or {}
        queued += f"; {sent.get('succeeded', 0)} done"
        if p.get("payment_failures"):
            queued += (
                f", {p['payment_failures']} not done (failed {sent.get('failed', 0)}, in doubt "
                f"{sent.get('unknown', 0)}, not sent {sent.get('not_sent', 0)})"
            )
        if p.get("payment_stopped"):
            queued += f"; sending stopped: {p['payment_stopped']}"
    n = p.get("reauthorize", 0)
    shown = p.get("reauthorize_orders") or []
    renew = (
        f"{n} order(s) whose authorization expires before the promised date: ask the customer "
        "to authorize again (" + ", ".join(shown) + (", …" if n > len(shown) else "") + ")"
        if n
        else "none"
    )
    return [("payments", queued), ("  to reauthorize", renew)]


def _label(s: dict[str, Any]) -> str:
    """What the run's message is: why it stopped, or a warning on a run that went through."""
    return "warning" if str(s.get("status", "")).startswith("succeeded") else "stopped"


def _send_failures(comm: dict[str, Any]) -> str:
    """What did not go out in the send pass (failed, in doubt, left pending), and why."""
    n = comm.get("send_failures") or 0
    if not n:
        return ""
    text = f"; {n} not sent (failed, in doubt or left pending)"
    if comm.get("send_stopped"):
        text += f"; sending stopped: {comm['send_stopped']}"
    return text


def summary_text(s: dict[str, Any]) -> str:
    """The run summary for a terminal."""
    rows = summary_lines(s)
    width = max(len(k) for k, _ in rows)
    out = [f"{k:<{width}}  {v}" for k, v in rows]
    for r in _get(s, "ingest", "rejected", default=[]):
        out.append(f"rejected file: {r['file']}: {r['reason']}")
    for path in _get(s, "ingest", "empty", default=[]):
        out.append(f"empty file (loaded, 0 rows): {path}")
    if s.get("message"):
        out.append(f"{_label(s)}: {s['message']}")
    return "\n".join(out)


def summary_markdown(s: dict[str, Any]) -> str:
    """The run summary as a markdown artifact for the Prefect UI."""
    rows = "\n".join(f"| {k.strip()} | {v} |" for k, v in summary_lines(s))
    md = f"# Backorder cycle {s.get('run_id')}\n\n| | |\n|---|---|\n{rows}\n"
    rejected = _get(s, "ingest", "rejected", default=[])
    if rejected:
        md += "\n## Rejected files\n\n" + "\n".join(
            f"- `{r['file']}`: {r['reason']}" for r in rejected
        )
    empty = _get(s, "ingest", "empty", default=[])
    if empty:
        md += "\n\n## Empty files (loaded, 0 rows)\n\n" + "\n".join(f"- `{p}`" for p in empty)
    if s.get("message"):
        md += f"\n\n**{_label(s).capitalize()}:** {s['message']}\n"
    if s.get("audit_head"):
        md += f"\n\nAudit chain head (seq:hash): `{s['audit_head']}`\n"
    return md
