"""The message rules of backorders.domain.messages, compiled to DuckDB SQL for rendering.

The pure functions in domain/messages.py stay the reference (tests compare the two on
random worlds). Here the templates (config/templates) become SQL string expressions:
each literal piece is a bound parameter, each placeholder a column, HTML-escaped in the
HTML part. What depends on the customer's locale (dates, line statuses) is computed by
the reference functions themselves, once per distinct date and date style, into small
temp tables that the SQL joins. So rendering is set-based: no per-message Python. It runs
when emails are sent and on demand (backorders.adapters.outbox.EmailRenderer), not when
they are queued.
"""

from __future__ import annotations

import functools
import html
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, get_args

import duckdb

from backorders.adapters import store
from backorders.domain.messages import (
    DATE_STYLES,
    HTML_SECTION_SEPARATOR,
    TEXT_SECTION_SEPARATOR,
    Layout,
    MessageKind,
    Templates,
    date_style,
    format_date,
    line_status_text,
    template_parts,
)

_SLOT = re.compile(r"\{\{(\w+)\}\}")


@functools.cache
def _whitespace() -> str:
    """Every character str.split() splits on (str.isspace)."""
    return "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())


@functools.cache
def bad_address_chars() -> str:
    """A regex class of the characters is_deliverable_address refuses anywhere in an address.

    Whitespace, control, format and line/paragraph separator characters (as Python's
    unicodedata of this interpreter says), and , ; < > : " ( ) [ ] \\. Surrogates cannot
    occur in DuckDB text.
    """
    refused = {'"', "(", ")", ",", ":", ";", "<", ">", "[", "\\", "]"}
    cats = {"Cc", "Cf", "Zl", "Zp"}
    codes = sorted(
        c
        for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c <= 0xDFFF
        and ((ch := chr(c)).isspace() or unicodedata.category(ch) in cats or ch in refused)
    )
    return _regex_class("".join(map(chr, codes)))


def _regex_class(chars: str) -> str:
    """An RE2 character class matching exactly these characters (as code point ranges)."""
    ranges: list[tuple[int, int]] = []
    for c in sorted(map(ord, chars)):
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return f"[{body}]"


@dataclass
class _Params:
    """Bound parameters of one statement: literal text never goes into the SQL."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


Expr = str | Callable[[], str]  # SQL, or a function making it (binds its parameters when used)


def _pieces(
    parts: Sequence[tuple[str, str | None]], exprs: Mapping[str, Expr], params: _Params
) -> str:
    """SQL concatenating template parts: literals as parameters, placeholders as expressions."""
    pieces: list[str] = []
    for literal, name in parts:
        if literal:
            pieces.append(params.add(literal))
        if name is not None:
            expr = exprs[name]
            pieces.append(expr if isinstance(expr, str) else expr())
    if not pieces:
        return "''"
    return pieces[0] if len(pieces) == 1 else f"concat({', '.join(pieces)})"


def _compile(template: str, exprs: Mapping[str, Expr], params: _Params) -> str:
    """SQL for Template(template).safe_substitute(values), the values being SQL expressions."""
    return _pieces(template_parts(template, exprs), exprs, params)


def _one_line(expr: str, params: _Params) -> str:
    """SQL for " ".join(s.split()): whitespace runs to one space, none at either end.

    Most subjects are one line already; the regex replace runs only on those that are not.
    """
    ws = _regex_class(_whitespace())
    odd = _regex_class(_whitespace().replace(" ", ""))
    return (
        f"(case when regexp_matches({expr}, {params.add(f'{odd}|  |^ | $')}) "
        f"then trim(regexp_replace({expr}, {params.add(ws + '+')}, ' ', 'g')) "
        f"else {expr} end)"
    )


def _by_kind(compiled: Mapping[str, str], params: _Params) -> str:
    """SQL choosing each message's expression by its kind (no template: null, refused)."""
    whens = " ".join(f"when {params.add(kind)} then {expr}" for kind, expr in compiled.items())
    return f"case kind {whens} end"


class Renderer:
    """The rendering statements (sections, messages, emails), with the templates compiled in."""

    def __init__(
        self,
        templates: Mapping[str, Templates],
        layout: Layout,
        *,
        reasons: Mapping[str, str],
        discount_code: str,
    ) -> None:
        missing = sorted(set(get_args(MessageKind)) - set(templates))
        if missing:
            raise ValueError(f"no template for message kind(s) {missing} in config/templates")
        self.templates = dict(templates)
        self.layout = layout
        self.reasons = dict(reasons)
        self.discount_code = discount_code

    def stage_sections(self) -> tuple[str, dict[str, Any]]:
        """The statement rendering the sections of the messages in render_msgs (render_sections)."""
        params = _Params()

        def reason(escape: Callable[[str], str]) -> Callable[[], str]:
            def sql() -> str:
                whens = " ".join(
                    f"when {params.add(cond)} then {params.add(escape(text))}"
                    for cond, text in sorted(self.reasons.items())
                )
                return f"case condition {whens} else '' end"

            return sql

        def discount(escape: Callable[[str], str]) -> Callable[[], str]:
            return lambda: params.add(escape(self.discount_code))

        text_values: dict[str, Expr] = {
            "customer_name": "name_text",
            "order_id": "order_id",
            "promised_date": "date_text",
            "lines": "lines_text",
            "discount_code": discount(str),
            "reason": reason(str),
        }
        html_values: dict[str, Expr] = {
            "customer_name": "name_html",
            "order_id": "order_html",
            "promised_date": "date_html",
            "lines": "lines_html",
            "discount_code": discount(html.escape),
            "reason": reason(html.escape),
        }
        kinds = sorted(self.templates)
        t = self.templates
        slots = {
            "section_subject": _by_kind(
                {k: _one_line(_compile(t[k].subject, text_values, params), params) for k in kinds},
                params,
            ),
            "section_text": _by_kind(
                {k: _compile(t[k].text, text_values, params) for k in kinds}, params
            ),
            "section_html": _by_kind(
                {k: _compile(t[k].html, html_values, params) for k in kinds}, params
            ),
        }
        return _fill(store.sql("outbox/message_sections"), slots), params.values

    def _single(self, params: _Params) -> dict[str, str]:
        """The layout around one section (compose() of one part), compiled."""
        return {
            "single_text": _compile(
                self.layout.text, {"customer_name": "name_text", "sections": "section_text"}, params
            ),
            "single_html": _compile(
                self.layout.html, {"customer_name": "name_html", "sections": "section_html"}, params
            ),
        }

    def render_messages(self) -> tuple[str, dict[str, Any]]:
        """The query of each staged section framed alone (what the message says on its own)."""
        params = _Params()
        return _fill(store.sql("outbox/render_messages"), self._single(params)), params.values

    def render_emails(self) -> tuple[str, dict[str, Any]]:
        """The query of the staged emails: one section framed alone, or several joined."""
        params = _Params()
        slots = {
            **self._single(params),
            "text_separator": params.add(TEXT_SECTION_SEPARATOR),
            "html_separator": params.add(HTML_SECTION_SEPARATOR),
            "subject_many": _one_line(
                _compile(self.layout.subject_many, {"order_ids": "order_ids"}, params), params
            ),
            "frame_text": _compile(
                self.layout.text,
                {"customer_name": "name_text", "sections": "sections_text"},
                params,
            ),
            "frame_html": _compile(
                self.layout.html,
                {"customer_name": "name_html", "sections": "sections_html"},
                params,
            ),
        }
        return _fill(store.sql("outbox/render_emails"), slots), params.values


def _fill(sql: str, slots: Mapping[str, str]) -> str:
    """Put compiled expressions into a statement's {{slots}} (a missing one is an error)."""
    return _SLOT.sub(lambda m: slots[m.group(1)], sql)


def fill_text_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The locale-dependent texts rendering needs, by the reference functions, as temp tables.

    queue_styles (locale -> date style), queue_date_texts (promised date, style -> text,
    html) and queue_line_texts (line status, promised date, style -> text, html): a few
    rows per distinct date of the open lines, whatever the number of messages. A message
    may tell a date no line has any more (it is rendered later than it was queued):
    add_message_dates adds those.
    """
    locales = [r[0] for r in con.execute("select distinct locale from customers").fetchall()]
    if None not in locales:  # a message whose customer row is gone: the default style
        locales.append(None)
    _temp_table(
        con,
        "queue_styles",
        {
            "locale": ("varchar", locales),
            "style": ("varchar", [date_style(loc) for loc in locales]),
        },
    )
    pairs: list[tuple[str, date | None]] = con.execute(
        "select distinct l.status, l.promised_date from line_status as l "
        "where l.status not in ('shipped', 'cancelled')"
    ).fetchall()
    dates = [*sorted({d for _, d in pairs if d is not None}), None]
    d_rows = [(d, s, format_date(d, s)) for d in dates for s in DATE_STYLES]
    _temp_table(
        con,
        "queue_date_texts",
        {
            "promised_date": ("date", [r[0] for r in d_rows]),
            "style": ("varchar", [r[1] for r in d_rows]),
            "txt": ("varchar", [r[2] for r in d_rows]),
            "html": ("varchar", [html.escape(r[2]) for r in d_rows]),
        },
    )
    l_rows = [(st, d, s, line_status_text(st, d, s)) for st, d in pairs for s in DATE_STYLES]
    _temp_table(
        con,
        "queue_line_texts",
        {
            "status": ("varchar", [r[0] for r in l_rows]),
            "promised_date": ("date", [r[1] for r in l_rows]),
            "style": ("varchar", [r[2] for r in l_rows]),
            "txt": ("varchar", [r[3] for r in l_rows]),
            "html": ("varchar", [html.escape(r[3]) for r in l_rows]),
        },
    )


def add_message_dates(con: duckdb.DuckDBPyConnection) -> None:
    """Add to queue_date_texts the dates told in render_msgs that it lacks (usually none)."""
    missing: list[tuple[date]] = con.execute(
        "select distinct promised_date from render_msgs where promised_date is not null "
        "except select promised_date from queue_date_texts"
    ).fetchall()
    rows = [(d, s, format_date(d, s)) for (d,) in missing for s in DATE_STYLES]
    if rows:
        con.execute(
            "insert into queue_date_texts select unnest($d::date[]), unnest($s::varchar[]), "
            "unnest($t::varchar[]), unnest($h::varchar[])",
            {
                "d": [r[0] for r in rows],
                "s": [r[1] for r in rows],
                "t": [r[2] for r in rows],
                "h": [html.escape(r[2]) for r in rows],
            },
        )


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: Mapping[str, Any]) -> None:
    """A temp table of these columns: name -> (SQL type, values), zipped row by row."""
    cols = ", ".join(f"unnest(${c}::{t}[]) as {c}" for c, (t, _) in columns.items())
    con.execute(
        f"create or replace temp table {name} as select {cols}",
        {c: list(values) for c, (_, values) in columns.items()},
    )


def drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the queue step's and the renderer's temp tables (they live in this connection)."""
    for table in (
        "queue_new",
        "queue_emails",
        "render_keys",
        "render_msgs",
        "render_sections",
        "queue_styles",
        "queue_date_texts",
        "queue_line_texts",
    ):
        con.execute(f"drop table if exists {table}")
