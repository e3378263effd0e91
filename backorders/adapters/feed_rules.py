"""Row rules: turn `_raw` into `_typed` with a reason for every broken row.

The type, required, choice and range rules are generated from the contract
(backorders.domain.contract), so every feed is checked the same way; the rules
that need other tables (unknown customer, order or sku, ETA horizon) are
hand-written statements in sql/ingest/rules_<feed>.sql.

A column of `_raw` is text, except the columns a reader declares *native*: a
Parquet column whose Arrow type is exactly the contract's (an integer for an
int, a boolean, a timestamp, a date, a decimal that fits decimal(18, 2)). Those
arrive already typed; only the rules a typed value can still break (required,
range, a timestamp or date outside the years 0001-9999 that the text form
accepts) are checked, with the same reason texts as the text path.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from backorders.domain.contract import Column, Feed

SQL_DIR = Path(__file__).resolve().parent.parent.parent / "sql"

_TS = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)"
_DESC = {
    "int": "a whole number",
    "decimal": "a decimal number",
    "bool": "true or false",
    "timestamp": "an ISO 8601 timestamp with a timezone, e.g. 2026-11-21T14:03:00Z",
    "date": "a date YYYY-MM-DD",
    "list": "a list",
}


def _q(name: str) -> str:
    return '"' + name + '"'


# The characters trim() removes (Unicode category Zs): a space, or a non-ASCII one.
def _text(col: str) -> str:
    """`nullif(trim(col), '')`, with trim() skipped when it cannot change the value.

    trim() costs about 0.1-0.3 us a value (it is Unicode-aware); a value that is not
    empty and starts and ends with an ASCII character other than a space is already
    trimmed, and that test is a few byte comparisons.
    """
    return (
        f"case when {col} = '' or starts_with({col}, ' ') or ends_with({col}, ' ') "
        f"or {col} >= chr(128) or {col}[-1] >= chr(128) then nullif(trim({col}), '') "
        f"else {col} end"
    )


def _typed_expr(c: Column) -> str:
    v = _text(_q(c.name))
    if c.type == "str":
        return v
    if c.type == "int":
        return f"case when regexp_full_match({v}, '[+-]?\\d+') then try_cast({v} as bigint) end"
    if c.type == "decimal":
        return (
            f"case when regexp_full_match({v}, '[+-]?\\d+(\\.\\d+)?') "
            f"then try_cast({v} as decimal(18, 2)) end"
        )
    if c.type == "bool":
        return f"case lower({v}) when 'true' then true when 'false' then false end"
    if c.type == "timestamp":
        return f"case when regexp_full_match({v}, '{_TS}') then try_cast({v} as timestamptz) end"
    if c.type == "date":
        return f"case when regexp_full_match({v}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') then try_cast({v} as date) end"
    # list: readers always give a JSON array text (or NULL)
    return f"coalesce(try_cast({v}::json as varchar[]), [])"


# The SQL type of each contract type in the feed tables.
SQL_TYPES = {
    "str": "varchar",
    "int": "bigint",
    "decimal": "decimal(18, 2)",
    "bool": "boolean",
    "timestamp": "timestamptz",
    "date": "date",
    "list": "varchar[]",
}

# What a native value looks like as text (as the Parquet reader renders it for the
# text path), so that reason texts are the same whichever path a column took.
_NATIVE_TEXT = {"timestamp": "strftime({v}, '%Y-%m-%dT%H:%M:%S.%fZ')"}


def _value(c: Column, native: bool = False) -> str:
    """The value as the file had it, shortened and quoted, for a reason text."""
    if native:
        text = _NATIVE_TEXT.get(c.type, "{v}::varchar").format(v=_q(c.name))
        return f"'\"' || left({text}, 60) || '\"'"
    return f"'\"' || left({_text(_q(c.name))}, 60) || '\"'"


Rule = tuple[str, str]  # (SQL condition: the rule is broken, SQL text of the reason)


def _native_errors(c: Column) -> list[Rule]:
    """The rules a value that arrived typed can still break (the text path's reasons)."""
    v = _q(c.name)
    out = []
    if c.required:
        out.append((f"{v} is null", f"'{c.name}: required value is missing'"))
    if c.type in ("timestamp", "date"):
        # the text form has a 4-digit year; the same value as text would be refused
        hi = "'9999-12-31 23:59:59.999999+00'" if c.type == "timestamp" else "'9999-12-31'"
        out.append(
            (
                f"not ({v} between '0001-01-01' and {hi})",
                f"'{c.name}: ' || {_value(c, True)} || ' is not {_DESC[c.type]}'",
            )
        )
    if c.min_value is not None:
        op, word = (">", "greater than") if c.min_exclusive else (">=", "at least")
        out.append(
            (
                f"not ({v} {op} {c.min_value})",
                f"'{c.name}: ' || {_value(c, True)} || ' must be {word} {c.min_value}'",
            )
        )
    return out


def _errors(c: Column, typed: str) -> list[Rule]:
    raw = _text(_q(c.name))
    out = []
    if c.required:
        out.append((f"{raw} is null", f"'{c.name}: required value is missing'"))
    if c.type != "str" and c.type != "list":
        out.append(
            (
                f"{raw} is not null and {typed} is null",
                f"'{c.name}: ' || {_value(c)} || ' is not {_DESC[c.type]}'",
            )
        )
    if c.choices:
        allowed = ", ".join(f"'{x}'" for x in c.choices)
        out.append(
            (
                f"{raw} is not null and {raw} not in ({allowed})",
                f"'{c.name}: ' || {_value(c)} || ' is not one of {', '.join(c.choices)}'",
            )
        )
    if c.min_value is not None:
        op, word = (">", "greater than") if c.min_exclusive else (">=", "at least")
        out.append(
            (
                f"{typed} is not null and not ({typed} {op} {c.min_value})",
                f"'{c.name}: ' || {_value(c)} || ' must be {word} {c.min_value}'",
            )
        )
    return out


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def typed_sql(
    feed: Feed, native: Collection[str] = (), *, view: bool = False, tiers: Sequence[str] = ()
) -> str:
    """Build `create temp table _typed` (or a view) for a feed.

    Its columns: row_number, the typed contract columns, `_broken` (a row rule is
    broken, or the record could not be parsed) and `_reject_reason` (every broken
    rule, in words). `_broken` is a plain boolean test, so a scan that keeps the good
    rows never builds reason texts; in a view, `_reject_reason` is computed only for
    the rows a filter on `_broken` keeps.

    `native` names the columns of `_raw` that are already of the contract's SQL type;
    `tiers` are the configured customer tiers (the customers feed only).
    """
    cols, errs = [], []
    for c in feed.columns:
        if c.name in native:
            typed = _q(c.name)
            errs.extend(_native_errors(c))
        else:
            typed = _typed_expr(c)
            errs.extend(_errors(c, typed))
        value = f"coalesce({typed}, {c.default})" if c.default is not None else typed
        cols.append(f"{value} as {_q(c.name)}")
    if feed.name == "customers":
        # tiers are configurable (settings), not part of the contract; a view cannot
        # take parameters, so they are written in as quoted literals
        tier_list = "[" + ", ".join(_literal(t) for t in tiers) + "]::varchar[]"
        tier = _text("tier")
        errs.append(
            (
                f"{tier} is not null and not list_contains({tier_list}, {tier})",
                f"'tier: \"' || left({tier}, 60) || '\" is not one of the configured tiers (' "
                f"|| array_to_string({tier_list}, ', ') || ')'",
            )
        )
    broken = " or ".join(["parse_error is not null", *(f"({cond})" for cond, _ in errs)])
    reasons = ", ".join(f"case when {cond} then {text} end" for cond, text in errs)
    return (
        f"create or replace temp {'view' if view else 'table'} _typed as "
        "select row_number, "
        + ", ".join(cols)
        + f", coalesce({broken}, false) as _broken"
        + f", coalesce(parse_error, nullif(concat_ws('; ', {reasons}), '')) as _reject_reason"
        + " from _raw"
    )


def duplicate_key_sql(feed: Feed) -> str:
    """Rows whose key appears more than once in the file: all of them are quarantined.

    Over `_valid` (the rows that broke no row rule). One grouping finds the repeated
    keys (usually none); only their rows are then numbered and described, so a clean
    file costs one hash aggregate on its key.
    """
    key = ", ".join(_q(k) for k in feed.key)
    shown = " || ', ' || ".join(f"'{k}=' || coalesce({_q(k)}::varchar, '')" for k in feed.key)
    return f"""
        with repeated as (
            select {key} from _valid group by {key} having count(*) > 1
        ),
        dup as (
            select t.row_number, {", ".join(f"t.{_q(k)}" for k in feed.key)}
            from _valid as t semi join repeated using ({key})
        )
        select row_number,
               'duplicate key (' || {shown} || ') appears ' || count(*) over (partition by {key})
               || ' times in this file (rows '
               || string_agg(row_number::varchar, ', ' order by row_number) over (partition by {key})
               || '): none of them is loaded' as reason
        from dup
    """


def rules_sql(feed: Feed) -> str | None:
    """The hand-written cross-table rules for a feed, if it has any."""
    path = SQL_DIR / "ingest" / f"rules_{feed.name}.sql"
    return path.read_text(encoding="utf-8") if path.exists() else None


# The integer key of a feed's own rows (migration 010): assigned when the MERGE first
# stores a row, as the largest key so far ($key_base) plus the row's number in its file,
# never changed. Not a sequence: nextval() takes a lock per row (a 10M-row load ran on
# one core). allocation_store.link_keys numbers rows inserted by hand.
OWN_KEYS: dict[str, str] = {
    "customers": "customer_key",
    "products": "sku_key",
    "orders": "order_key",
    "order_lines": "line_key",
}
# The integer keys a feed row links to (migration 010): (column, table, the id both
# share). Looked up when the row is merged, so that the allocation joins and sorts
# integers; allocation_store.link_keys fills any a hand-written row lacks.
LINKS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "orders": (("customer_key", "customers", "customer_id"),),
    "order_lines": (("order_key", "orders", "order_id"), ("sku_key", "products", "sku")),
}


def merge_sql(feed: Feed, *, empty: bool = False) -> str:
    """Merge the good rows into the feed table by key (the contract's upsert).

    A new key is inserted; a stored row is replaced only when the incoming version
    is newer; an older or equal one changes nothing. One join of the file's rows
    with the table, no index: the feed tables have no primary-key index (migration
    006) because maintaining one costs more than the whole load at 10M rows. The
    key stays unique because a file's repeated keys never reach this statement
    (they are quarantined) and a key already stored is updated, never inserted.
    `empty`: the table has no row (a first load), so every key is new: a plain
    insert, the same rows without the join. A new row's own integer key
    (OWN_KEYS) is $key_base plus its row number in the file (never updated); the
    keys it links to (LINKS) are looked up here, on insert and on update.
    """
    t = feed.name
    cols = list(feed.column_names)
    links = LINKS.get(t, ())
    non_key = [c for c in cols if c not in feed.key]
    own = [OWN_KEYS[t]] if t in OWN_KEYS else []
    ins_cols = [*cols, *(col for col, _, _ in links), *own, "source_sha256"]
    ins_vals = [f"s.{_q(c)}" for c in cols] + [f"s.{col}" for col, _, _ in links]
    ins_vals += ["$key_base + s.row_number" for _ in own] + ["$sha"]
    sets = [f"{_q(c)} = s.{_q(c)}" for c in non_key]
    sets += [f"{col} = s.{col}" for col, _, _ in links] + ["source_sha256 = $sha"]
    if t == "purchase_orders":
        # remember when a PO line was first seen received: that is its receipt time
        received = "case when s.status = 'received' then s.updated_at end"
        ins_cols.append("received_at")
        ins_vals.append(received)
        sets.append(f"received_at = coalesce({t}.received_at, {received})")
        # and its first ETA and version, kept for the supplier KPIs (migration 020)
        ins_cols += ["first_expected_at", "first_seen_at"]
        ins_vals += ["s.expected_at", "s.updated_at"]
    source = f"select {', '.join(f'g.{_q(c)}' for c in cols)}, g.row_number"
    source += "".join(f", l{i}.{col}" for i, (col, _, _) in enumerate(links))
    source += " from _good as g"
    source += "".join(
        f" left join {table} as l{i} on l{i}.{_q(id_)} = g.{_q(id_)}"
        for i, (_, table, id_) in enumerate(links)
    )
    if empty:
        return (
            f"insert into {t} ({', '.join(_q(c) for c in ins_cols)}) "
            f"select {', '.join(ins_vals)} from ({source}) as s"
        )
    on = " and ".join(f"{t}.{_q(k)} = s.{_q(k)}" for k in feed.key)
    return (
        f"merge into {t} using ({source}) as s "
        f"on ({on}) "
        f"when matched and s.{_q(feed.version)} > {t}.{_q(feed.version)} "
        f"then update set {', '.join(sets)} "
        f"when not matched then insert ({', '.join(_q(c) for c in ins_cols)}) "
        f"values ({', '.join(ins_vals)})"
    )


# The settings a bound may name (Column.max_setting), and the timestamp window's.
BOUND_SETTINGS = ("max_quantity", "max_on_hand", "max_unit_price", "max_eta_days")


def bounds_sql(feed: Feed) -> str | None:
    """Rows of `_valid` with an implausible value: a reason per broken bound, or None.

    Every timestamp must lie between `$earliest` (the setting earliest_date) and
    `$latest` (the run's as-of plus max_future_days; an expiry, Column.horizon_setting:
    the as-of plus that setting's days); every number column with a
    `max_setting` must be at most that setting (bound as `$<setting>`). The values
    are typed here (the row rules passed), so every format is judged the same way.
    """
    ts = "strftime({v}, '%Y-%m-%dT%H:%M:%SZ')"
    rules: list[Rule] = []
    for c in feed.columns:
        v = _q(c.name)
        if c.type == "timestamp":
            shown = ts.format(v=v)
            if c.horizon_setting is not None:
                # an expiry lies ahead by nature: at most the setting's days after the as-of
                rules.append(
                    (
                        f"{v} > $as_of::timestamptz + to_days(${c.horizon_setting}::integer)",
                        f"'{c.name}: ' || {shown} || ' is more than ' || ${c.horizon_setting} "
                        f"|| ' day(s) after the run''s as-of (rule {c.horizon_setting}): a typo?'",
                    )
                )
            else:
                rules.append(
                    (
                        f"{v} > $latest",
                        f"'{c.name}: ' || {shown} || ' is later than the run''s as-of ' "
                        f"|| {ts.format(v='$as_of::timestamptz')} || ' plus ' || $max_future_days "
                        "|| ' day(s) (rule max_future_days): a typo or a wrong clock?'",
                    )
                )
            rules.append(
                (
                    f"{v} < $earliest",
                    f"'{c.name}: ' || {shown} || ' is before ' || $earliest::date::varchar "
                    "|| ' (rule earliest_date): a typo or a placeholder date?'",
                )
            )
        elif c.max_setting is not None:
            rules.append(
                (
                    f"{v} > ${c.max_setting}",
                    f"'{c.name}: ' || {v}::varchar || ' is more than ' || ${c.max_setting} "
                    f"|| ' (rule {c.max_setting}): a typo?'",
                )
            )
    if not rules:
        return None
    broken = " or ".join(f"({cond})" for cond, _ in rules)
    reasons = ", ".join(f"case when {cond} then {text} end" for cond, text in rules)
    return f"select row_number, concat_ws('; ', {reasons}) as reason from _valid where {broken}"
