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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from backorders.adapters import store
from backorders.settings import Settings

# per-sku fingerprints of reconcile's inputs (sql/marts/inputs/<name>.sql: sku, fp)
SUPPLY_SOURCES = ("stock", "purchase_orders", "supplier_updates", "shipments", "products")
# per-line fingerprints of the allocation's own inputs (sql/allocate/inputs/<name>.sql),
# compared by buckets of keys first: the old and new sku of each line that changed
ALLOC_SOURCES = ("order_lines",)
# order-grain triggers: an order's facts, its customer's tier or its value changed ->
# the skus of its lines
ORDER_TRIGGERS = ("orders", "customers", "order_value")
# order lines and orders are compared by buckets of 2**10 consecutive keys first (sums
# of their fingerprints), then one by one in the buckets that differ: a 10M-line join is
# not paid for a few new or changed lines
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
    names = list(values)
    con.execute("delete from alloc_state where list_contains($n, name)", {"n": names})
    con.execute(
        "insert into alloc_state select unnest($n), unnest($v)",
        {"n": names, "v": [None if v is None else str(v) for v in values.values()]},
    )


def stored_value(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """A fact the last committed run stored (alloc_state), or None."""
    return _state(con).get(name)


def store_value(con: duckdb.DuckDBPyConnection, name: str, value: object) -> None:
    """Store a fact for the next run (alloc_state), in the caller's transaction."""
    _set_state(con, **{name: value})


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
    # the sources whose fingerprints changed (all, on a full run), and every source's sum
    sources: list[str] = field(default_factory=list)
    totals: dict[str, str] = field(default_factory=dict)


def plan_supply(con: duckdb.DuckDBPyConnection, *, as_of: datetime, full: bool) -> SupplyPlan:
    """Fingerprint reconcile's inputs per sku into _fp_supply; list changed skus in _supply_dirty.

    A source whose fingerprints sum to the last run's is left out of the comparison sku
    by sku (on an hourly rerun most are: the stock counts, the products, the POs).
    """
    params = {"as_of": as_of}
    state = _state(con)
    why = "requested (--full)" if full else _run_wide(state, as_of=as_of, key="supply_as_of")
    sources = {n: store.sql("marts/inputs/" + n) for n in SUPPLY_SOURCES if _on(n)}
    # every source's sum in one statement; the sources whose sum moved are then
    # fingerprinted sku by sku
    sums = ", ".join(f"(select coalesce(sum(fp), 0) from ({sql}))" for sql in sources.values())
    bind = params if "$as_of" in sums else {}
    row = con.execute(f"select {sums}", bind).fetchone() if sources else ()
    totals = {name: str(total) for name, total in zip(sources, row or (), strict=True)}
    changed = [n for n in sources if why or totals[n] != state.get(f"supply_total_{n}")]
    parts = [f"select '{n}' as source, sku, fp from ({sources[n]})" for n in changed]
    empty = "select null::varchar as source, null::varchar as sku, null::hugeint as fp limit 0"
    con.execute(
        "create or replace temp table _fp_supply as " + (" union all ".join(parts) or empty),
        params if any("$as_of" in sources[n] for n in changed) else {},
    )
    if why:
        return SupplyPlan(full=True, why=why, sources=changed, totals=totals)
    con.execute(
        "create or replace temp table _supply_dirty as "
        "select distinct coalesce(n.sku, o.sku) as sku from _fp_supply as n "
        "full join (select * from alloc_fp_sku where list_contains($s, source)) as o "
        "on o.source = n.source and o.sku = n.sku where n.fp is distinct from o.fp",
        {"s": changed},
    )
    skus = _count(con, "_supply_dirty")
    return SupplyPlan(full=False, why="incremental", skus=skus, sources=changed, totals=totals)


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
            {"s": plan.sources},
        )
        con.execute(
            "insert into alloc_fp_sku select source, sku, null, fp from _fp_supply "
            "where sku in (select sku from _supply_dirty)"
        )
        if _on("supply"):
            con.execute("insert into alloc_dirty select 'supply', sku, null from _supply_dirty")
    totals = {f"supply_total_{name}": total for name, total in plan.totals.items()}
    _set_state(con, supply_as_of=as_of.isoformat(), **totals)
    con.execute("drop table if exists _fp_supply")


# -- allocation --------------------------------------------------------------------------

# the tables other rows link to by key (feed_rules.LINKS), with their own key: a key of
# theirs that vanished or changed since the last run unlinks rows that did not change
_LINKED = (("orders", "order_key"), ("customers", "customer_key"), ("products", "sku_key"))
_OWN_KEYS = (*_LINKED, ("order_lines", "line_key"))

# allocation_store.check_links: key and relink rows inserted or edited by hand; returns
# whether it found any such row, and whether some line's sku has no product row
LinkCheck = Callable[[duckdb.DuckDBPyConnection], tuple[bool, bool]]


@dataclass
class Plan:
    """Which skus the allocation redoes: all (full, and why) or those in _dirty."""

    full: bool
    why: str
    skus: int = 0
    by_trigger: dict[str, int] = field(default_factory=dict)
    # some line's sku has no product row (found by check_links; such a run is full)
    unlinked: bool = False

    def describe(self) -> dict[str, Any]:
        """What the run summary and the logs say about the plan."""
        return {
            "mode": "full" if self.full else "incremental",
            "why": self.why,
            "skus_reallocated": self.skus,
            "by_trigger": self.by_trigger,
        }


def _full_reason(
    state: dict[str, str | None], *, as_of: datetime, settings: Settings, full: bool
) -> str | None:
    if full:
        return "requested (--full)"
    why = _run_wide(state, as_of=as_of, key="as_of")
    if why:
        return why
    if _on("settings") and state.get("settings") != settings_digest(settings):
        return "the settings changed"
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
    check_links: LinkCheck,
) -> Plan:
    """Decide full or incremental; fingerprint the inputs; store them; fill _dirty (sku_key).

    An incremental run reads what changed (order lines and orders compared by buckets
    of keys, customers, the skus reconcile rebuilt) and checks the links of those rows
    only; the full key check (check_links) runs when that cannot prove the others
    still hold, and on every full run.
    """
    params = {"as_of": as_of}
    state = _state(con)
    with_value = "order_value" in settings.priority_key
    why = _full_reason(state, as_of=as_of, settings=settings, full=full)
    if not why and store.scalar(
        con, "select count(*) from alloc_dirty where reason = 'supply_all'"
    ):
        why = "reconcile rebuilt all supply"
    # clean: no row lacked its key or link (proved from the changed rows, or found by
    # check_links); a run that keyed or relinked rows leaves the next to check all again
    clean, unlinked = True, False
    if not why:
        _find_line_changes(con, params)
        _find_order_changes(con, params)
        if not _links_hold(con, state):
            found, unlinked = check_links(con)
            clean = not found
            if unlinked:
                why = "some order line's sku has no product row"
            elif found:
                why = "rows without their keys or links were found (inserted or edited by hand)"
        if not why and _count_where(con, "_lines_changed", "fp is null"):
            why = "order lines were deleted (a full run redoes the orders they belonged to)"
    plan = Plan(full=True, why=why) if why else _dirty_skus(con, with_value)
    if not plan.full:
        products = _count(con, "products")
        if plan.skus > FULL_RUN_SHARE * max(products, 1):
            plan = Plan(
                full=True,
                why=f"{plan.skus} of {products} skus changed (over {FULL_RUN_SHARE:.0%})",
                by_trigger=plan.by_trigger,
            )
    if plan.full and clean:  # every full run reads all rows' keys and links
        found, unlinked = check_links(con)
        clean = not found
    plan.unlinked = unlinked
    if plan.full:
        _store_all(con, params, with_value=with_value)
        plan.skus = int(store.scalar(con, "select count(distinct sku_key) from alloc_fp_line") or 0)
    new: dict[str, object] = {
        "as_of": as_of.isoformat(),
        "settings": settings_digest(settings),
        "links_clean": int(clean),
    }
    if plan.full:
        new["full_at"] = as_of.isoformat()
    _set_state(con, **new, **_key_state(con))
    con.execute("delete from alloc_dirty where reason in ('supply', 'supply_all')")
    scratch = ("_fp_orders", "_lines_changed", "_lines_changed_buckets", "_orders_changed")
    for t in (*scratch, "_orders_changed_buckets", "_value_new", "_sc"):
        con.execute(f"drop table if exists {t}")
    return plan


def _count_where(con: duckdb.DuckDBPyConnection, table: str, where: str) -> int:
    return int(store.scalar(con, f"select count(*) from {table} where {where}") or 0)


def _lines_sql() -> str:
    return store.sql("allocate/inputs/order_lines")


def _bucket(key: str) -> str:
    return f"{key} >> {_BUCKET_BITS}"


# above this many runs of changed buckets, the rows are picked by a join on the bucket
_MAX_RANGES = 64


def _in_buckets(con: duckdb.DuckDBPyConnection, buckets: str, key: str) -> str:
    """A filter on the rows of the buckets listed in `buckets`, by ranges of keys.

    Keys are numbered in the order rows arrive, so the rows of a bucket sit together
    in the table, and a range of keys lets DuckDB skip every other row group (a join
    on the bucket number reads the whole key column: 0.2 s at 10M lines).
    """
    found = [b for (b,) in con.execute(f"select b from {buckets} order by b").fetchall()]
    nulls = f" or {key} is null" if None in found else ""
    found = [b for b in found if b is not None]
    runs: list[list[int]] = []
    for b in found:
        if runs and runs[-1][1] == b - 1:
            runs[-1][1] = b
        else:
            runs.append([b, b])
    if len(runs) > _MAX_RANGES:
        return f"{_bucket(key)} in (select b from {buckets}){nulls}"
    ranges = [
        f"{key} between {lo << _BUCKET_BITS} and {((hi + 1) << _BUCKET_BITS) - 1}"
        for lo, hi in runs
    ]
    return "(" + (" or ".join(ranges) or "false") + nulls + ")"


def _find_changes(
    con: duckdb.DuckDBPyConnection,
    params: dict[str, Any],
    *,
    rows: str,
    key: str,
    stored: str,
    out: str,
    keep: tuple[str, ...] = (),
) -> None:
    """Rows new, changed or gone since the last run, into `out`: key, `keep` new and old, fp.

    One pass sums the rows' fingerprints (`rows`: key, fp, ...) per bucket of keys and
    compares the sums with the stored ones (`stored`_bucket); only the rows of the
    buckets that differ are compared one by one with `stored`. The buckets that differ,
    with their new sums, are left in `out`_buckets for _store_buckets.
    """
    buckets = f"{out}_buckets"
    sums = f"select {_bucket(key)} as b, sum(fp::hugeint) as s from ({rows}) group by b"
    con.execute(
        f"create or replace temp table {buckets} as select coalesce(n.b, o.b) as b, n.s "
        f"from ({sums}) as n full join {stored}_bucket as o on o.b = n.b "
        "where n.s is distinct from o.s",
        params,
    )
    where = _in_buckets(con, buckets, key)
    cols = "".join(f"n.{c}, o.{c} as old_{c}, " for c in keep)
    con.execute(
        f"create or replace temp table {out} as select coalesce(n.{key}, o.{key}) as {key}, "
        f"{cols}n.fp from (from ({rows}) where {where}) as n "
        f"full join (from {stored} where {where}) as o on o.{key} = n.{key} "
        "where n.fp is distinct from o.fp",
        params,
    )


def _store_buckets(con: duckdb.DuckDBPyConnection, stored: str, out: str) -> None:
    """The new sums of the buckets that differed, stored for the next run."""
    con.execute(f"delete from {stored}_bucket where b in (select b from {out}_buckets)")
    con.execute(f"insert into {stored}_bucket from {out}_buckets where s is not null")
    con.execute(f"drop table {out}_buckets")


def _store_bucket_sums(con: duckdb.DuckDBPyConnection, stored: str, key: str) -> None:
    con.execute(
        f"create or replace table {stored}_bucket as select {_bucket(key)} as b, "
        f"sum(fp::hugeint) as s from {stored} group by b"
    )


def _find_line_changes(con: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> None:
    """The order lines new, changed or gone since the last run, into _lines_changed.

    A line's stored fingerprint keeps its sku and order: a line moved to another sku or
    order shows both, old and new.
    """
    _find_changes(
        con,
        params,
        rows=_lines_sql(),
        key="line_key",
        stored="alloc_fp_line",
        out="_lines_changed",
        keep=("sku_key", "order_key"),
    )


def _find_order_changes(con: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> None:
    """The orders new, changed or gone since the last run (their facts), into _orders_changed."""
    _find_changes(
        con,
        params,
        rows=store.sql("allocate/inputs/orders"),
        key="order_key",
        stored="alloc_fp_order",
        out="_orders_changed",
    )


def _key_state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Per table others link to: its rows' count, the sum of its keys' hashes, its largest key."""
    out = {}
    for table, key in _LINKED:
        n, digest, top = con.execute(
            f"select count(*), coalesce(sum(hash({key})::hugeint), 0), coalesce(max({key}), 0) "
            f"from {table}"
        ).fetchone() or (0, 0, 0)
        out[f"keys_{table}"] = f"{n}:{digest}:{top}"
    return out


def _keys_only_grew(con: duckdb.DuckDBPyConnection, state: dict[str, str | None]) -> bool:
    """Whether every table others link to still has each key it had at the last run.

    Keys only grow (the feeds and check_links number new rows after the largest): so the
    rows keyed up to the last run's largest key must be the same in number and in the
    sum of their keys' hashes. A row deleted, or a key changed by hand, shows here.
    """
    for table, key in _LINKED:
        last = state.get(f"keys_{table}")
        if last is None:
            return False
        n, digest, top = last.split(":")
        now = con.execute(
            f"select count(*), coalesce(sum(hash({key})::hugeint), 0) from {table} "
            f"where {key} <= $m",
            {"m": int(top)},
        ).fetchone() or (0, 0)
        if (int(now[0]), str(now[1])) != (int(n), digest):
            return False
    return True


def _links_hold(con: duckdb.DuckDBPyConnection, state: dict[str, str | None]) -> bool:
    """Whether every row still has its own key and its links, checking the changed rows only.

    True when the last run found every link whole, no row lacks its own key, no key
    others link to vanished (_keys_only_grew), and the lines and orders that changed
    link to rows that exist. Else check_links reads every row.
    """
    if state.get("links_clean") != "1":
        return False
    nulls = " + ".join(f"(select count(*) from {t} where {k} is null)" for t, k in _OWN_KEYS)
    if store.scalar(con, f"select {nulls}") or not _keys_only_grew(con, state):
        return False
    broken = store.scalar(
        con,
        "select (select count(*) from (from _lines_changed where fp is not null) "
        "        anti join orders using (order_key))"
        " + (select count(*) from (from _lines_changed where fp is not null) "
        "    anti join products using (sku_key))"
        " + (select count(*) from (select customer_key from orders "
        "    where order_key in (select order_key from _orders_changed where fp is not null)) "
        "    anti join customers using (customer_key))",
    )
    return not broken


def _store_all(con: duckdb.DuckDBPyConnection, params: dict[str, Any], *, with_value: bool) -> None:
    """A full run: every fingerprint and order value stored afresh."""
    con.execute("create or replace table alloc_fp_line as " + _lines_sql(), params)
    _store_bucket_sums(con, "alloc_fp_line", "line_key")
    con.execute(
        "create or replace temp table _fp_orders as " + store.sql("allocate/inputs/orders"), params
    )
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
    _store_bucket_sums(con, "alloc_fp_order", "order_key")
    con.execute("delete from alloc_fp_customer")
    con.execute(
        "insert into alloc_fp_customer select customer_key, fp from ("
        + store.sql("allocate/inputs/customers")
        + ")"
    )
    _store_bucket_sums(con, "alloc_fp_customer", "customer_key")


def _dirty_skus(con: duckdb.DuckDBPyConnection, with_value: bool) -> Plan:
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

    # a line's sku, old and new (and, through reconcile, its supply, product and shipments)
    if _on("order_lines"):
        add(
            "order_lines",
            "select sku_key from _lines_changed union all select old_sku_key from _lines_changed",
        )
    _store_lines(con)
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


def _store_lines(con: duckdb.DuckDBPyConnection) -> None:
    """The changed lines' fingerprints and their buckets' sums, stored for the next run."""
    con.execute("delete from alloc_fp_line where line_key in (select line_key from _lines_changed)")
    con.execute(
        "insert into alloc_fp_line select line_key, sku_key, order_key, fp from _lines_changed "
        "where fp is not null"
    )
    _store_buckets(con, "alloc_fp_line", "_lines_changed")


def _orders(con: duckdb.DuckDBPyConnection, add: _Add) -> None:
    """Orders whose facts changed (priority, status, customer, ...): the skus of their lines."""
    _store_buckets(con, "alloc_fp_order", "_orders_changed")
    if not _count(con, "_orders_changed"):
        return
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


def _customers(con: duckdb.DuckDBPyConnection, add: _Add) -> None:
    """Customers whose tier changed: the skus of their orders' lines."""
    _find_changes(
        con,
        {},
        rows=store.sql("allocate/inputs/customers"),
        key="customer_key",
        stored="alloc_fp_customer",
        out="_customers_changed",
    )
    _store_buckets(con, "alloc_fp_customer", "_customers_changed")
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
    # no line was deleted (that makes the run full), so an order's value can only change
    # through a line that changed: the orders it belongs to now and belonged to before
    where = (
        "where order_key in (select order_key from _lines_changed "
        "union all select old_order_key from _lines_changed)"
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
