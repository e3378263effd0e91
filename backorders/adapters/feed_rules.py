"""Row rules: turn `_raw` (text) into `_typed` with a reason for every broken row.

The type, required, choice and range rules are generated from the contract
(backorders.domain.contract), so every feed is checked the same way; the rules
that need other tables (unknown customer, order or sku, ETA horizon) are
hand-written statements in sql/ingest/rules_<feed>.sql.
"""

from __future__ import annotations

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


def _typed_expr(c: Column) -> str:
    v = f"nullif(trim({_q(c.name)}), '')"
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


def _value(c: Column) -> str:
    """The value as the file had it, shortened and quoted, for a reason text."""
    return f"'\"' || left(trim({_q(c.name)}), 60) || '\"'"


def _errors(c: Column, typed: str) -> list[str]:
    raw = f"nullif(trim({_q(c.name)}), '')"
    out = []
    if c.required:
        out.append(f"case when {raw} is null then '{c.name}: required value is missing' end")
    if c.type != "str" and c.type != "list":
        out.append(
            f"case when {raw} is not null and {typed} is null then "
            f"'{c.name}: ' || {_value(c)} || ' is not {_DESC[c.type]}' end"
        )
    if c.choices:
        allowed = ", ".join(f"'{x}'" for x in c.choices)
        out.append(
            f"case when {raw} is not null and {raw} not in ({allowed}) then "
            f"'{c.name}: ' || {_value(c)} || ' is not one of {', '.join(c.choices)}' end"
        )
    if c.min_value is not None:
        op, word = (">", "greater than") if c.min_exclusive else (">=", "at least")
        out.append(
            f"case when {typed} is not null and not ({typed} {op} {c.min_value}) then "
            f"'{c.name}: ' || {_value(c)} || ' must be {word} {c.min_value}' end"
        )
    return out


def typed_sql(feed: Feed) -> str:
    """Build `create temp table _typed` for a feed: typed columns plus `reason`."""
    cols, errs = [], []
    for c in feed.columns:
        typed = _typed_expr(c)
        value = f"coalesce({typed}, {c.default})" if c.default is not None else typed
        cols.append(f"{value} as {_q(c.name)}")
        errs.extend(_errors(c, typed))
    if feed.name == "customers":
        # tiers are configurable, so they are a bound parameter, not part of the contract
        errs.append(
            "case when nullif(trim(tier), '') is not null and not list_contains($tiers, trim(tier)) "
            "then 'tier: \"' || left(trim(tier), 60) || '\" is not one of the configured tiers (' "
            "|| array_to_string($tiers, ', ') || ')' end"
        )
    return (
        "create or replace temp table _typed as select row_number, raw as _raw_record, "
        + ", ".join(cols)
        + ", coalesce(parse_error, nullif(concat_ws('; ', "
        + ", ".join(errs)
        + "), '')) as _reject_reason from _raw"
    )


def duplicate_key_sql(feed: Feed) -> str:
    """Rows whose key appears more than once in the file: all of them are quarantined."""
    key = ", ".join(_q(k) for k in feed.key)
    shown = " || ', ' || ".join(f"'{k}=' || coalesce({_q(k)}::varchar, '')" for k in feed.key)
    return f"""
        select row_number,
               'duplicate key (' || {shown} || ') appears ' || count(*) over (partition by {key})
               || ' times in this file (rows '
               || string_agg(row_number::varchar, ', ' order by row_number) over (partition by {key})
               || '): none of them is loaded' as reason
        from _typed
        where _reject_reason is null
        qualify count(*) over (partition by {key}) > 1
    """


def rules_sql(feed: Feed) -> str | None:
    """The hand-written cross-table rules for a feed, if it has any."""
    path = SQL_DIR / "ingest" / f"rules_{feed.name}.sql"
    return path.read_text(encoding="utf-8") if path.exists() else None


def upsert_sql(feed: Feed) -> str:
    """Insert good rows; a row replaces a stored one only when its version is newer."""
    cols = list(feed.column_names)
    extra_cols, extra_vals, extra_set = (
        ["source_sha256"],
        ["$sha"],
        ["source_sha256 = excluded.source_sha256"],
    )
    if feed.name == "purchase_orders":
        # remember when a PO line was first seen received: that is its receipt time
        extra_cols.append("received_at")
        extra_vals.append("case when status = 'received' then updated_at end")
        extra_set.append(
            "received_at = coalesce(purchase_orders.received_at, excluded.received_at)"
        )
    non_key = [c for c in cols if c not in feed.key]
    sets = [f"{_q(c)} = excluded.{_q(c)}" for c in non_key] + extra_set
    return (
        f"insert into {feed.name} ({', '.join(_q(c) for c in cols + extra_cols)}) "
        f"select {', '.join(_q(c) for c in cols)}, {', '.join(extra_vals)} from _good "
        f"on conflict ({', '.join(_q(k) for k in feed.key)}) do update set {', '.join(sets)} "
        f"where excluded.{_q(feed.version)} > {feed.name}.{_q(feed.version)}"
    )
