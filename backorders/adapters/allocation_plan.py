"""Which skus a run must reconcile and allocate again: its inputs' fingerprints against the last run's.

The allocation is independent per sku, so a run redoes only the skus whose inputs can
have changed (docs/allocation.md, "Incremental runs"). Nothing here is a hand-kept list
of feeds: every trigger is a statement that fingerprints one input from the tables
themselves (sql/marts/inputs/, sql/allocate/inputs/), compared with the fingerprint
stored by the last committed run. TRIGGERS names them all; a test drops one at a time
and checks that incremental runs then differ from full ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from backorders.adapters import store
from backorders.settings import Settings

# per-sku fingerprints of reconcile's inputs (sql/marts/inputs/<name>.sql: sku, fp)
SUPPLY_SOURCES = ("stock", "purchase_orders", "supplier_updates", "shipments", "products")
# per-sku-key fingerprints of the allocation's own inputs (sql/allocate/inputs/<name>.sql)
ALLOC_SOURCES = ("order_lines",)
# order-grain triggers: an order's facts, its customer's tier or its value changed ->
# the skus of its lines
ORDER_TRIGGERS = ("orders", "customers", "order_value")
# orders are compared by buckets of 2**10 consecutive keys first (sums of their
# fingerprints), then one by one in the buckets that differ: a 5M-order join is not
# paid for a few new or changed orders
_BUCKET_BITS = 10
# carried from one step to the next: the skus reconcile rewrote ("supply"), and the
# skus whose committed lines (allocated last run, served first: keep_committed) changed
CARRIED = ("supply", "committed")
# run-wide: the date moved (stock is available "today", POs turn overdue), the
# settings changed, or the run is earlier than the last one: everything is redone
RUN_WIDE = ("as_of_date", "settings")
TRIGGERS: tuple[str, ...] = (
    SUPPLY_SOURCES + ALLOC_SOURCES + ORDER_TRIGGERS + CARRIED + RUN_WIDE + ("ship_complete",)
)

# above this share of the skus an incremental run costs more than a full one
FULL_RUN_SHARE = 0.3
# settings that cannot change an allocation's inputs or policy are still hashed (a change
# costs one full run); only paths and secrets are left out, they name where, not what
_NOT_HASHED = {"db", "landing", "sendgrid_api_key"}


def _on(name: str) -> bool:
    return name in TRIGGERS


def settings_digest(settings: Settings) -> str:
    """A digest of every setting but paths and secrets: a change makes the next run full."""
    values = settings.model_dump(mode="json", exclude=_NOT_HASHED)
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    return dict(con.execute("select name, value from alloc_state").fetchall())


def _set_state(con: duckdb.DuckDBPyConnection, **values: object) -> None:
    for name, value in values.items():
        con.execute("delete from alloc_state where name = $n", {"n": name})
        con.execute(
            "insert into alloc_state values ($n, $v)",
            {"n": name, "v": None if value is None else str(value)},
        )


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(store.scalar(con, f"select count(*) from {table}") or 0)


def _run_wide(state: dict[str, str | None], *, as_of: datetime, key: str) -> str | None:
    """Why the run must be full whatever changed (None: it may be incremental)."""
    last = state.get(key)
    if last is None:
        return "first run (no fingerprints stored yet)"
    last_as_of = datetime.fromisoformat(last)
    if as_of < last_as_of:
        return f"as_of {as_of.isoformat()} is earlier than the last run's {last}"
    if _on("as_of_date") and as_of.date() != last_as_of.date():
        return f"the date moved ({last_as_of.date()} -> {as_of.date()})"
    return None


# -- reconcile ---------------------------------------------------------------------------


@dataclass
class SupplyPlan:
    """Which skus reconcile rebuilds: all (full, and why) or those in _supply_dirty."""

    full: bool
    why: str
    skus: int = 0


def plan_supply(con: duckdb.DuckDBPyConnection, *, as_of: datetime, full: bool) -> SupplyPlan:
    """Fingerprint reconcile's inputs per sku into _fp_supply; list changed skus in _supply_dirty."""
    params = {"as_of": as_of}
    parts = [
        f"select '{name}' as source, sku, fp from ({store.sql('marts/inputs/' + name)})"
        for name in SUPPLY_SOURCES
        if _on(name)
    ]
    empty = "select null::varchar as source, null::varchar as sku, null::hugeint as fp limit 0"
    con.execute(
        "create or replace temp table _fp_supply as " + (" union all ".join(parts) or empty),
        params if parts else {},
    )
    why = "requested (--full)" if full else _run_wide(_state(con), as_of=as_of, key="supply_as_of")
    if why:
        return SupplyPlan(full=True, why=why)
    active = [n for n in SUPPLY_SOURCES if _on(n)]
    con.execute(
        "create or replace temp table _supply_dirty as "
        "select distinct coalesce(n.sku, o.sku) as sku from _fp_supply as n "
        "full join (select * from alloc_fp_sku where list_contains($s, source)) as o "
        "on o.source = n.source and o.sku = n.sku where n.fp is distinct from o.fp",
        {"s": active},
    )
    return SupplyPlan(full=False, why="incremental", skus=_count(con, "_supply_dirty"))


def commit_supply(con: duckdb.DuckDBPyConnection, plan: SupplyPlan, *, as_of: datetime) -> None:
    """Store the supply fingerprints and tell the next allocation which skus changed."""
    if plan.full:
        con.execute(
            "delete from alloc_fp_sku where list_contains($s, source)", {"s": SUPPLY_SOURCES}
        )
        con.execute("insert into alloc_fp_sku select source, sku, null, fp from _fp_supply")
        con.execute("insert into alloc_dirty values ('supply_all', null, null)")
    elif plan.skus:
        con.execute(
            "delete from alloc_fp_sku where list_contains($s, source) "
            "and sku in (select sku from _supply_dirty)",
            {"s": SUPPLY_SOURCES},
        )
        con.execute(
            "insert into alloc_fp_sku select source, sku, null, fp from _fp_supply "
            "where sku in (select sku from _supply_dirty)"
        )
        if _on("supply"):
            con.execute("insert into alloc_dirty select 'supply', sku, null from _supply_dirty")
    _set_state(con, supply_as_of=as_of.isoformat())
    con.execute("drop table if exists _fp_supply")


# -- allocation --------------------------------------------------------------------------


@dataclass
class Plan:
    """Which skus the allocation redoes: all (full, and why) or those in _dirty."""

    full: bool
    why: str
    skus: int = 0
    by_trigger: dict[str, int] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What the run summary and the logs say about the plan."""
        return {
            "mode": "full" if self.full else "incremental",
            "why": self.why,
            "skus_reallocated": self.skus,
            "by_trigger": self.by_trigger,
        }


def _full_reason(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    settings: Settings,
    full: bool,
    unlinked: bool,
) -> str | None:
    state = _state(con)
    if full:
        return "requested (--full)"
    why = _run_wide(state, as_of=as_of, key="as_of")
    if why:
        return why
    if unlinked:
        return "some order line's sku has no product row"
    if lines_deleted(con):
        return "order lines were deleted (a full run redoes the orders they belonged to)"
    if _on("settings") and state.get("settings") != settings_digest(settings):
        return "the settings changed"
    if store.scalar(con, "select count(*) from alloc_dirty where reason = 'supply_all'"):
        return "reconcile rebuilt all supply"
    last_full = state.get("full_at")
    every = settings.full_run_every_hours
    if every and last_full and as_of >= datetime.fromisoformat(last_full) + timedelta(hours=every):
        return f"periodic full run (full_run_every_hours = {every})"
    return None


def plan_allocation(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    settings: Settings,
    full: bool,
    unlinked: bool,
) -> Plan:
    """Decide full or incremental; fingerprint the inputs; store them; fill _dirty (sku_key)."""
    params = {"as_of": as_of}
    con.execute(
        "create or replace temp table _fp_lines as " + store.sql("allocate/inputs/order_lines"),
        params,
    )
    con.execute(
        "create or replace temp table _fp_orders as " + store.sql("allocate/inputs/orders"), params
    )
    con.execute(
        "create or replace temp table _fp_customers as " + store.sql("allocate/inputs/customers")
    )
    with_value = "order_value" in settings.priority_key
    why = _full_reason(con, as_of=as_of, settings=settings, full=full, unlinked=unlinked)
    plan = Plan(full=True, why=why) if why else _dirty_skus(con, with_value=with_value)
    if not plan.full:
        products = _count(con, "products")
        if plan.skus > FULL_RUN_SHARE * max(products, 1):
            plan = Plan(
                full=True,
                why=f"{plan.skus} of {products} skus changed (over {FULL_RUN_SHARE:.0%})",
                by_trigger=plan.by_trigger,
            )
    if plan.full:
        _store_all(con, with_value=with_value)
        plan.skus = _count(con, "_fp_lines")
    state: dict[str, object] = {"as_of": as_of.isoformat(), "settings": settings_digest(settings)}
    if plan.full:
        state["full_at"] = as_of.isoformat()
    _set_state(con, **state)
    _store_line_keys(con)
    con.execute("delete from alloc_dirty where reason in ('supply', 'supply_all')")
    scratch = ("_fp_lines", "_fp_orders", "_fp_customers", "_lines_changed", "_orders_changed")
    for t in (*scratch, "_value_new", "_sc"):
        con.execute(f"drop table if exists {t}")
    return plan


def _store_all(con: duckdb.DuckDBPyConnection, *, with_value: bool) -> None:
    """A full run: every fingerprint and order value stored afresh."""
    con.execute("delete from alloc_fp_sku where source = 'order_lines'")
    con.execute("insert into alloc_fp_sku select 'order_lines', null, sku_key, fp from _fp_lines")
    value = "null::decimal(38, 2)"
    join = ""
    if with_value:
        con.execute(
            "create or replace temp table _value_new as "
            + store.sql("allocate/inputs/order_value").replace("{where}", "")
        )
        value, join = "v.order_value", "left join _value_new as v using (order_key)"
    con.execute("delete from alloc_fp_order")
    con.execute(
        f"insert into alloc_fp_order select f.order_key, f.fp, {value} from _fp_orders as f {join}"
    )
    _set_state(con, orders_total=store.scalar(con, "select sum(fp::hugeint) from _fp_orders"))
    con.execute("delete from alloc_fp_customer")
    con.execute("insert into alloc_fp_customer select customer_key, fp from _fp_customers")


def _dirty_skus(con: duckdb.DuckDBPyConnection, *, with_value: bool) -> Plan:
    """The skus whose inputs changed since the last run, into _dirty; the stored state updated."""
    con.execute("create or replace temp table _dirty (sku_key bigint, trigger_ varchar)")
    by: dict[str, int] = {}

    def add(trigger: str, select_sku_keys: str, params: dict[str, Any] | None = None) -> None:
        before = _count(con, "_dirty")
        con.execute(
            f"insert into _dirty select distinct sku_key, '{trigger}' from ({select_sku_keys}) "
            "where sku_key is not null and sku_key not in (select sku_key from _dirty)",
            params or {},
        )
        by[trigger] = by.get(trigger, 0) + _count(con, "_dirty") - before

    # the lines of a sku (and, through reconcile, its supply, product and shipments)
    con.execute(
        "create or replace temp table _lines_changed as "
        "select coalesce(n.sku_key, o.sku_key) as sku_key, n.fp from _fp_lines as n "
        "full join (select * from alloc_fp_sku where source = 'order_lines') as o "
        "on o.sku_key = n.sku_key where n.fp is distinct from o.fp"
    )
    if _on("order_lines"):
        add("order_lines", "select sku_key from _lines_changed")
    con.execute(
        "delete from alloc_fp_sku where source = 'order_lines' "
        "and sku_key in (select sku_key from _lines_changed)"
    )
    con.execute(
        "insert into alloc_fp_sku select 'order_lines', null, sku_key, fp from _lines_changed "
        "where fp is not null"
    )
    if _on("supply"):
        add(
            "supply",
            "select p.sku_key from alloc_dirty as d join products as p using (sku) "
            "where d.reason = 'supply'",
        )
    if _on("committed"):
        add("committed", "select sku_key from alloc_dirty where reason = 'committed'")
    _orders(con, add)
    _customers(con, add)
    if with_value:
        _order_values(con, add)
    if _on("ship_complete"):
        _ship_complete(con, add)
    return Plan(full=False, why="incremental", skus=_count(con, "_dirty"), by_trigger=by)


_Add = Any  # the _dirty_skus adder: add(trigger, select_sku_keys_sql)


def _orders(con: duckdb.DuckDBPyConnection, add: _Add) -> None:
    """Orders whose facts changed (priority, tier, status, ...): the skus of their lines."""
    total = store.scalar(con, "select sum(fp::hugeint) from _fp_orders")
    # one sum over all orders first: an unchanged total spares the 5M-row comparison
    if str(total) == _state(con).get("orders_total"):
        return
    bucket = f"order_key >> {_BUCKET_BITS}"
    sums = f"select {bucket} as b, sum(fp::hugeint) as s from {{t}} group by b"
    con.execute(
        "create or replace temp table _buckets as select coalesce(n.b, o.b) as b "
        f"from ({sums.format(t='_fp_orders')}) as n "
        f"full join ({sums.format(t='alloc_fp_order')}) as o using (b) "
        "where n.s is distinct from o.s"
    )
    con.execute(
        "create or replace temp table _orders_changed as "
        "select coalesce(n.order_key, o.order_key) as order_key, n.fp "
        f"from (from _fp_orders where {bucket} in (select b from _buckets)) as n "
        f"full join (from alloc_fp_order where {bucket} in (select b from _buckets)) as o "
        "on o.order_key = n.order_key where n.fp is distinct from o.fp"
    )
    con.execute("drop table _buckets")
    if _on("orders"):
        add(
            "orders",
            "select sku_key from order_lines "
            "where order_key in (select order_key from _orders_changed)",
        )
    con.execute(
        "update alloc_fp_order set fp = c.fp from _orders_changed as c "
        "where c.order_key = alloc_fp_order.order_key and c.fp is not null"
    )
    con.execute(
        "delete from alloc_fp_order where order_key in "
        "(select order_key from _orders_changed where fp is null)"
    )
    con.execute(
        "insert into alloc_fp_order select c.order_key, c.fp, null from _orders_changed as c "
        "anti join alloc_fp_order as o using (order_key) where c.fp is not null"
    )
    _set_state(con, orders_total=total)


def _customers(con: duckdb.DuckDBPyConnection, add: _Add) -> None:
    """Customers whose tier changed: the skus of their orders' lines."""
    con.execute(
        "create or replace temp table _customers_changed as "
        "select coalesce(n.customer_key, o.customer_key) as customer_key, n.fp "
        "from _fp_customers as n full join alloc_fp_customer as o using (customer_key) "
        "where n.fp is distinct from o.fp"
    )
    if not _count(con, "_customers_changed"):
        con.execute("drop table _customers_changed")
        return
    if _on("customers"):
        add(
            "customers",
            "select ol.sku_key from order_lines as ol join orders as o using (order_key) "
            "where o.customer_key in (select customer_key from _customers_changed)",
        )
    con.execute(
        "delete from alloc_fp_customer "
        "where customer_key in (select customer_key from _customers_changed)"
    )
    con.execute(
        "insert into alloc_fp_customer select customer_key, fp from _customers_changed "
        "where fp is not null"
    )
    con.execute("drop table _customers_changed")


def _order_values(con: duckdb.DuckDBPyConnection, add: _Add) -> None:
    """Orders whose value changed (a line's qty, price or status): the skus of all their lines."""
    if not _count(con, "_lines_changed"):
        return
    # no line was deleted (checked before: a deletion makes the run full), so an order's
    # value can only change through a line on a sku whose lines changed
    where = (
        "where order_key in (select order_key from order_lines "
        "where sku_key in (select sku_key from _lines_changed))"
    )
    con.execute(
        "create or replace temp table _value_new as "
        + store.sql("allocate/inputs/order_value").replace("{where}", where)
    )
    con.execute(
        "create or replace temp table _value_changed as select v.order_key, v.order_value "
        "from _value_new as v left join alloc_fp_order as o using (order_key) "
        "where v.order_value is distinct from o.order_value"
    )
    if _on("order_value"):
        add(
            "order_value",
            "select sku_key from order_lines "
            "where order_key in (select order_key from _value_changed)",
        )
    con.execute(
        "update alloc_fp_order set order_value = c.order_value from _value_changed as c "
        "where c.order_key = alloc_fp_order.order_key"
    )
    con.execute("drop table _value_changed")


def _ship_complete(con: duckdb.DuckDBPyConnection, add: _Add) -> None:
    """The skus sharing an open ship-complete order with a changed sku, transitively."""
    if not store.scalar(
        con, "select count(*) from orders where ship_complete and status = 'open'"
    ) or not _count(con, "_dirty"):
        return
    con.execute("create or replace temp table _sc as " + store.sql("allocate/inputs/ship_complete"))
    while True:
        before = _count(con, "_dirty")
        add(
            "ship_complete",
            "select b.sku_key from _sc as a join _sc as b using (order_key) "
            "where a.sku_key in (select sku_key from _dirty)",
        )
        if _count(con, "_dirty") == before:
            return


def lines_deleted(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether an order line was deleted since the last run (keys only grow; deletions are rare)."""
    state = _state(con)
    if state.get("lines_count") is None:
        return False
    count, newer = con.execute(
        "select count(*), count(*) filter (where line_key > $m) from order_lines",
        {"m": int(state.get("lines_max_key") or 0)},
    ).fetchone() or (0, 0)
    return int(count) != int(state["lines_count"] or 0) + int(newer)


def _store_line_keys(con: duckdb.DuckDBPyConnection) -> None:
    count, top = con.execute(
        "select count(*), coalesce(max(line_key), 0) from order_lines"
    ).fetchone() or (0, 0)
    _set_state(con, lines_count=count, lines_max_key=top)


def record_committed(
    con: duckdb.DuckDBPyConnection, old: str, new: str, *, full: bool, keep: bool
) -> int:
    """Skus whose allocated lines differ between the old and new results: redone next run.

    With keep_committed, a line allocated in one run is served first in the next; when a
    run changes which lines of a sku are allocated, the next run must redo that sku even
    if nothing else changed (a full run would). `old`/`new` are the results tables.
    """
    con.execute("delete from alloc_dirty where reason = 'committed'")
    if not keep:  # without keep_committed the last run's allocations are not an input
        return 0
    restrict = "" if full else "sku_key in (select sku_key from _dirty) and"
    sides = [
        f"select sku_key, sum(hash(line_key)::hugeint) as fp from {t} "
        f"where {restrict} status = 'allocated' group by sku_key"
        for t in (old, new)
    ]
    con.execute(
        "insert into alloc_dirty select distinct 'committed', null, coalesce(a.sku_key, b.sku_key) "
        f"from ({sides[0]}) as a full join ({sides[1]}) as b using (sku_key) "
        "where a.fp is distinct from b.fp"
    )
    return int(
        store.scalar(con, "select count(*) from alloc_dirty where reason = 'committed'") or 0
    )
