"""Read one landing file (CSV, JSONL or Parquet) as the temp relation `_raw`.

`_raw` has the same shape whatever the format: row_number (1 = first data record),
one column per contract column (NULL when absent; lists as JSON array text) and
`parse_error` (set when the record could not even be split into fields). Types are
checked later, in SQL. The record as the file had it (for the quarantine) is told
by ReadResult.raw_source/raw_expr, and made only for the rows quarantined.

A contract column is VARCHAR text, except the *native* ones of a Parquet file (its
Arrow type is exactly the contract's, see ReadResult.native): those are already of
the feed table's SQL type, so no value makes a round trip through text. For a
Parquet file `_raw` is a view over the file, read again by each statement that
needs it (cheaper than copying it: a scan reads only the columns it uses); for a
CSV file whose records all parsed, a view over the one copy DuckDB's reader made.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from backorders.adapters.feed_rules import SQL_TYPES
from backorders.domain.contract import Column, Feed


class FileRejected(Exception):
    """The whole file is unusable; the message says why, for a person to act on."""


@dataclass
class FileFacts:
    """What one streaming pass over the bytes tells: hash, size, encoding, line count."""

    sha256: str
    size: int
    utf8: bool
    utf8_error: str | None
    lines: int
    ends_with_newline: bool


@dataclass
class ReadResult:
    """Outcome of reading a file into `_raw`: warnings for the run log."""

    rows: int
    warnings: list[str] = field(default_factory=list)
    # contract columns of `_raw` already of the table's SQL type (not text)
    native: frozenset[str] = frozenset()
    # where the quarantine finds a row's record as the file had it: `raw_expr` over
    # the relation `raw_source` (alias s, with a row_number), evaluated only for the
    # quarantined rows (an expression inside a view would run for every row)
    raw_source: str = "_raw"
    raw_expr: str = "s.raw"


def file_facts(path: Path, *, check_text: bool) -> FileFacts:
    """Hash the file and, for text formats, check UTF-8 and count lines in one pass."""
    h = hashlib.sha256()
    dec = codecs.getincrementaldecoder("utf-8")()
    size = lines = 0
    utf8, err = True, None
    last = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
            last = chunk[-1:]
            if check_text:
                lines += chunk.count(b"\n")
                if utf8:
                    try:
                        dec.decode(chunk)
                    except UnicodeDecodeError as exc:
                        utf8, err = False, f"byte {size - len(chunk) + exc.start}: {exc.reason}"
        if check_text and utf8:
            try:
                dec.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                utf8, err = False, f"at the end of the file: {exc.reason}"
    ends_nl = last == b"\n"
    if check_text and size and not ends_nl:
        lines += 1
    return FileFacts(h.hexdigest(), size, utf8, err, lines, ends_nl)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_columns(feed: Feed, present: list[str], fmt: str) -> list[str]:
    """Reject on missing required or duplicate columns; return warnings for extra ones."""
    dupes = sorted({c for c in present if present.count(c) > 1})
    if dupes:
        raise FileRejected(f"{fmt} header names a column twice: {', '.join(dupes)}")
    missing = [c for c in feed.required if c not in present]
    if missing:
        raise FileRejected(
            f"missing required column(s) {', '.join(missing)} "
            f"(the {feed.name} feed requires {', '.join(feed.required)})"
        )
    extra = [c for c in present if c not in feed.column_names]
    return [f"extra column(s) ignored: {', '.join(extra)}"] if extra else []


def _raw_select(feed: Feed, exprs: dict[str, str]) -> str:
    """Columns of `_raw` in contract order, NULL for the ones the file lacks."""
    return ", ".join(
        f"{exprs.get(c.name, 'null')}::varchar as {_ident(c.name)}" for c in feed.columns
    )


def drop_temp(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Drop temp tables or views of these names, whichever they are."""
    kinds = dict(
        con.execute(
            "select table_name, table_type from information_schema.tables "
            "where table_catalog = 'temp' and list_contains($names, table_name)",
            {"names": list(names)},
        ).fetchall()
    )
    for n in names:
        if n in kinds:
            con.execute(f"drop {'view' if kinds[n] == 'VIEW' else 'table'} {n}")


def _csv_exprs(feed: Feed, present: list[str]) -> dict[str, str]:
    """CSV text as `_raw` wants it: `;`-separated lists become JSON array text."""
    exprs = {c: _ident(c) for c in present}
    for c in feed.columns:
        if c.type == "list" and c.name in exprs:
            exprs[c.name] = (
                f"to_json(list_filter(list_transform(string_split({_ident(c.name)}, ';'), "
                "lambda x: trim(x)), lambda x: x <> ''))"
            )
    return exprs


def read_csv(
    con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, facts: FileFacts
) -> ReadResult:
    """Read a CSV file: explicit all-text columns from its header, malformed records kept."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header_line = fh.readline()
    if not header_line.strip():
        raise FileRejected("empty file: no header row")
    header = [h.strip() for h in next(csv.reader([header_line]))]
    warnings = _check_columns(feed, header, "CSV")
    drop_temp(con, "_raw", "_csv", "_rej", "_rscan")
    cols = {name: "VARCHAR" for name in header}
    con.execute(
        "create temp table _csv as select * from read_csv($p, columns=$cols, header=true, "
        "auto_detect=false, delim=',', quote='\"', escape='\"', strict_mode=true, "
        "null_padding=false, store_rejects=true, rejects_table='_rej', rejects_scan='_rscan') "
        "with ordinality",
        {"p": str(path), "cols": cols},
    )
    rej_lines = [
        int(r[0]) for r in con.execute("select distinct line from _rej order by line").fetchall()
    ]
    if rej_lines and not facts.ends_with_newline and rej_lines[-1] >= facts.lines:
        raise FileRejected(
            f"truncated: the last line ({facts.lines}) is incomplete and the file does not end "
            "with a newline (a cut-off export?)"
        )
    swallowed = con.execute(
        "select count(*) from _rej where error_type = 'UNQUOTED VALUE' "
        "and strpos(rtrim(csv_line, chr(13) || chr(10)), chr(10)) > 0"
    ).fetchall()[0][0]
    if swallowed:
        # DuckDB reads an unterminated quote on to the end of the file, so every good
        # record after it would be lost inside one rejected record: split by line instead.
        return _read_csv_by_line(con, feed, path, facts, header, warnings)
    present = [c.name for c in feed.columns if c.name in header]
    exprs = _csv_exprs(feed, present)
    raw_struct = ", ".join(f"{_ident(c)} := {_ident(c)}" for c in present)
    total = con.execute("select count(*) from _csv").fetchone()[0] + len(rej_lines)  # type: ignore[index]
    if not rej_lines:
        # every record parsed: record n is the n-th row, and `_raw` needs no copy
        con.execute(
            f"create temp view _raw as select ordinality as row_number, "
            f"{_raw_select(feed, exprs)}, null::varchar as parse_error from _csv"
        )
        s_struct = ", ".join(f"{_ident(c)} := s.{_ident(c)}" for c in present)
        return ReadResult(
            rows=total,
            warnings=warnings,
            raw_source=(
                f"(select ordinality as row_number, {', '.join(map(_ident, present))} from _csv)"
            ),
            raw_expr=f"to_json(struct_pack({s_struct}))::varchar",
        )
    # Accepted records keep file order (ordinality); their record number is the
    # n-th number in 1..total that is not a rejected record's.
    con.execute(
        f"""
        create temp table _raw as
        with rejected as (select distinct line - 1 as rn from _rej),
        free as (
            select s.rn, row_number() over (order by s.rn) as ordinality
            from range(1, $total + 1) s(rn) anti join rejected r on r.rn = s.rn
        ),
        accepted as (
            select f.rn as row_number, {_raw_select(feed, exprs)},
                   to_json(struct_pack({raw_struct}))::varchar as raw, null::varchar as parse_error
            from _csv c join free f using (ordinality)
        ),
        broken as (
            select line - 1 as row_number, {_raw_select(feed, {})}, any_value(csv_line) as raw,
                   string_agg(error_message, '; ' order by error_message) as parse_error
            from (
                -- DuckDB reports a short record once per missing column ("Found: 4",
                -- "Found: 5", ...): keep the first report of each kind
                select line, error_type, any_value(csv_line) as csv_line,
                       arg_min(error_message, column_idx) as error_message
                from _rej group by line, error_type
            ) group by line
        )
        select * from accepted union all select * from broken
        """,
        {"total": total},
    )
    return ReadResult(rows=total, warnings=warnings)


def _read_csv_by_line(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    path: Path,
    facts: FileFacts,
    header: list[str],
    warnings: list[str],
) -> ReadResult:
    """Read a CSV file one physical line per record (used when a quote is never closed).

    A malformed line then costs only itself; the price is that a quoted value cannot
    span lines in such a file (its continuation lines are quarantined too).
    """
    present = [c.name for c in feed.columns if c.name in header]
    at = {name: header.index(name) for name in present}
    data: dict[str, list[object]] = {n: [] for n in ["row_number", *present, "raw", "parse_error"]}
    last_broken = False
    with path.open(encoding="utf-8-sig", newline="") as fh:
        fh.readline()
        for rn, line in enumerate(fh, 1):
            text = line.rstrip("\r\n")
            if text == "":
                continue
            try:
                fields = next(csv.reader([text], strict=True), [])
                error = None
                if len(fields) != len(header):
                    error = f"Expected Number of Columns: {len(header)} Found: {len(fields)}"
            except csv.Error as exc:
                error = f"malformed CSV record ({exc}): a quote that is never closed?"
            last_broken = error is not None
            data["row_number"].append(rn)
            for name in present:
                data[name].append(None if error else fields[at[name]])
            data["raw"].append(text)
            data["parse_error"].append(error)
    if last_broken and not facts.ends_with_newline:
        raise FileRejected(
            f"truncated: the last line ({facts.lines}) is incomplete and the file does not end "
            "with a newline (a cut-off export?)"
        )
    exprs = _csv_exprs(feed, present)
    raw_struct = ", ".join(f"{_ident(c)} := {_ident(c)}" for c in present)
    table = pa.table(
        {k: pa.array(v, pa.int64() if k == "row_number" else pa.string()) for k, v in data.items()}
    )
    con.register("_csv_lines", table)
    try:
        con.execute(
            f"""
            create temp table _raw as
            select row_number, {_raw_select(feed, exprs)},
                   case when parse_error is null then to_json(struct_pack({raw_struct}))::varchar
                        else raw end as raw,
                   parse_error
            from _csv_lines
            """
        )
    finally:
        con.unregister("_csv_lines")
    return ReadResult(rows=len(data["row_number"]), warnings=warnings)


def _unwrap(col: str) -> str:
    """`rtrim(ltrim(col, BOM), CR)`, the trims (slow on long lines) only when they can act."""
    left = f"case when starts_with({col}, chr(65279)) then ltrim({col}, chr(65279)) else {col} end"
    return f"case when ends_with({col}, chr(13)) then rtrim({left}, chr(13)) else {left} end"


def read_jsonl(
    con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, facts: FileFacts
) -> ReadResult:
    """Read a JSONL file line by line; a line that is not a JSON object is kept as broken.

    A file of no JSON line (0 bytes, or blank lines only) is a JSONL file of no record.
    """
    drop_temp(con, "_raw", "_lines")
    if facts.size == 0:
        return ReadResult(rows=0)
    # blank lines are skipped; `ok`: the line is a JSON object
    con.execute(
        "create temp table _lines as select row_number, line, "
        "coalesce(case when json_valid(line) then json_type(line) = 'OBJECT' end, false) as ok "
        f"from (select ordinality as row_number, {_unwrap('line')} as line "
        "from read_csv($p, columns={'line': 'VARCHAR'}, header=false, auto_detect=false, "
        "delim=chr(1), quote='', escape='', new_line='\\n', strict_mode=false) with ordinality) "
        "where line is not null and not (line = '' or ((starts_with(line, ' ') "
        "or line >= chr(128)) and trim(line) = ''))",
        {"p": str(path)},
    )
    n, bad_last = con.execute(
        "select count(*), coalesce(bool_or(not ok and row_number = $last), false) from _lines",
        {"last": facts.lines},
    ).fetchone()  # type: ignore[misc]
    if n == 0:
        return ReadResult(rows=0)
    if bad_last and not facts.ends_with_newline:
        raise FileRejected(
            f"truncated: the last line ({facts.lines}) is not complete JSON and the file does not "
            "end with a newline (a cut-off export?)"
        )
    keys = [
        r[0]
        for r in con.execute(
            "select distinct unnest(json_keys(line)) from _lines where ok order by 1"
        ).fetchall()
    ]
    warnings = _check_columns(feed, keys, "JSONL") if keys else []
    if not keys:
        raise FileRejected("no line is a JSON object with the feed's keys")
    # one parse of each line: every contract key's JSON value at once (a list), then
    # each value alone (small); not a parse of the whole line per key
    paths = "[" + ", ".join(f"'$.{_ident(c.name)}'" for c in feed.columns) + "]"
    exprs = {}
    for k, c in enumerate(feed.columns, 1):
        v = f"_v[{k}]"
        if c.type == "list":
            exprs[c.name] = (
                f"case json_type({v}) when 'ARRAY' then {v}::varchar when 'VARCHAR' then "
                f"to_json(list_filter(list_transform(string_split(json_extract_string({v}, '$'), "
                "';'), lambda x: trim(x)), lambda x: x <> '')) end"
            )
        else:
            exprs[c.name] = (
                f"case when json_type({v}) in ('ARRAY', 'OBJECT') then {v}::varchar "
                f"else json_extract_string({v}, '$') end"
            )
    con.execute(
        f"""
        create temp table _raw as
        select row_number, {_raw_select(feed, exprs)}, line as raw, null::varchar as parse_error
        from (select row_number, line, json_extract(line, {paths}) as _v from _lines where ok)
        union all
        select row_number, {_raw_select(feed, {})}, line as raw,
               'not a JSON object (malformed line)' as parse_error
        from _lines where not ok
        """
    )
    return ReadResult(rows=int(n), warnings=warnings)


def _native_parquet(c: Column, parquet_type: str) -> bool:
    """Whether a Parquet column holds exactly the contract type (read as it is, no text)."""
    t = parquet_type.upper()
    if c.type == "int":
        return t in {
            "TINYINT",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "UTINYINT",
            "USMALLINT",
            "UINTEGER",
        }
    if c.type == "bool":
        return t == "BOOLEAN"
    if c.type == "timestamp":
        # a naive Parquet timestamp is taken as UTC (the session time zone)
        return t in {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP"}
    if c.type == "date":
        return t == "DATE"
    if c.type == "decimal" and t.startswith("DECIMAL("):
        # exactly representable in decimal(18, 2): no rounding, no overflow
        precision, scale = (int(x) for x in t[len("DECIMAL(") : -1].split(","))
        return scale <= 2 and precision - scale <= 16
    return False


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_parquet(
    con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, facts: FileFacts
) -> ReadResult:
    """Describe a Parquet file and make `_raw` a view over it.

    Columns of the contract's own Arrow type are read as they are (native); any
    other column becomes text so that one set of rules checks every format.
    """
    drop_temp(con, "_raw")
    try:
        schema = con.execute("describe select * from read_parquet($p)", {"p": str(path)}).fetchall()
    except duckdb.Error as exc:
        raise FileRejected(f"not a readable Parquet file: {str(exc).splitlines()[0]}") from exc
    types = {str(r[0]): str(r[1]) for r in schema}
    warnings = _check_columns(feed, list(types), "Parquet")
    exprs: dict[str, str] = {}
    native = set()
    for c in feed.columns:
        if c.name not in types:
            continue
        col, t = _ident(c.name), types[c.name].upper()
        if _native_parquet(c, t):
            native.add(c.name)
            exprs[c.name] = f"{col}::{SQL_TYPES[c.type]}"
        elif t.endswith("[]") or t.startswith("STRUCT") or t.startswith("MAP"):
            exprs[c.name] = f"to_json({col})"
        elif t == "TIMESTAMP" or t.startswith("TIMESTAMP_"):
            # A naive Parquet timestamp is taken as UTC (documented in docs/feeds.md).
            exprs[c.name] = f"strftime({col}, '%Y-%m-%dT%H:%M:%S.%fZ')"
        elif t == "BOOLEAN":
            exprs[c.name] = f"case when {col} then 'true' when not {col} then 'false' end"
        else:
            exprs[c.name] = col
    present = [c.name for c in feed.columns if c.name in types]
    columns = ", ".join(
        f"{exprs[c.name]} as {_ident(c.name)}"
        if c.name in native
        else f"{exprs.get(c.name, 'null')}::varchar as {_ident(c.name)}"
        for c in feed.columns
    )
    # a view cannot take parameters: the path is a quoted literal
    drop_temp(con, "_src")
    con.execute(
        f"create temp view _src as select file_row_number + 1 as row_number, "
        f"{', '.join(_ident(c) for c in present)} "
        f"from read_parquet({_literal(str(path))}, file_row_number = true)"
    )
    con.execute(
        f"create temp view _raw as select row_number, {columns}, null::varchar as parse_error "
        "from _src"
    )
    try:
        n = con.execute("select count(*) from _raw").fetchone()[0]  # type: ignore[index]
    except duckdb.Error as exc:
        raise FileRejected(f"unreadable Parquet data: {str(exc).splitlines()[0]}") from exc
    s_struct = ", ".join(f"{_ident(c)} := s.{_ident(c)}" for c in present)
    return ReadResult(
        rows=int(n),
        warnings=warnings,
        native=frozenset(native),
        raw_source="_src",
        raw_expr=f"to_json(struct_pack({s_struct}))::varchar",
    )


READERS = {".csv": read_csv, ".jsonl": read_jsonl, ".parquet": read_parquet}
