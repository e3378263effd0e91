"""Rendering queued emails from what the outbox holds: templates, layout, EmailRenderer.

Queueing writes what was decided, not text (migration 008): an email is rendered when it
is sent, and whenever someone asks (`backorders emails`), set-based in DuckDB
(sql/outbox/message_sections.sql, render_emails.sql, render_messages.sql; docs/emails.md).
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from backorders.adapters import message_sql
from backorders.domain.messages import Layout, Rendered, Templates
from backorders.settings import PROJECT_ROOT

TEMPLATE_DIR = PROJECT_ROOT / "config" / "templates"


def load_templates(folder: Path = TEMPLATE_DIR) -> dict[str, Templates]:
    """Read config/templates/<kind>.toml for every kind (files starting with _ are not kinds)."""
    out = {}
    for p in sorted(folder.glob("*.toml")):
        if p.name.startswith("_"):
            continue
        with p.open("rb") as fh:
            d = tomllib.load(fh)
        out[p.stem] = Templates(d["subject"], d["text"].strip() + "\n", d["html"].strip() + "\n")
    return out


def load_layout(folder: Path = TEMPLATE_DIR) -> Layout:
    """Read config/templates/_layout.toml: greeting, sections, sign-off."""
    with (folder / "_layout.toml").open("rb") as fh:
        d = tomllib.load(fh)
    return Layout(d["subject_many"], d["text"].strip() + "\n", d["html"].strip() + "\n")


REASONS = {
    "not_backorderable": "an item in your order is no longer available and cannot be backordered",
    "backordered": "your order would take longer to arrive than we think is fair to ask",
}


class EmailRenderer:
    """Renders queued emails and messages from what the outbox holds, set-based in DuckDB.

    What a message tells (kind, order, condition and promised date) comes from its outbox
    row (`state`, as queued), the customer's name from outbox_emails.to_name (as queued),
    the date style from the customer's locale, the lines from line_status (open lines,
    with in-stock substitutes from supply_lots) and the texts from config/templates, as
    backorders.domain.messages.render and compose do (tests/integration/test_outbox_sql.py
    checks the two are equal). Rows queued before migration 008 kept their rendered texts:
    those are returned as stored. The sender renders each chunk of emails just before its
    requests; `backorders emails` renders them for a person to read. The locale texts are
    built once per renderer (line_status does not change while it is used); close() drops
    its temp tables.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        discount_code: str = "",
        templates: Mapping[str, Templates] | None = None,
        layout: Layout | None = None,
    ) -> None:
        self.con = con
        self.sql = message_sql.Renderer(
            templates if templates is not None else load_templates(),
            layout if layout is not None else load_layout(),
            reasons=REASONS,
            discount_code=discount_code,
        )
        self._texts = False  # the locale texts are built (once per renderer)

    def emails(self, email_keys: Sequence[str]) -> dict[str, Rendered]:
        """Subject, text and HTML of each of these emails (outbox_emails keys; unknown: absent)."""
        return self._render(
            email_keys,
            stored="select email_key, subject, body_text, body_html from outbox_emails "
            "where body_text is not null and email_key in (select k from render_keys)",
            source="select o.message_key, o.order_id, o.kind, o.state, e.email_key, "
            "len(e.message_keys) as email_size, e.to_name, e.customer_id "
            "from outbox_emails as e join outbox as o using (email_key) "
            "where e.body_text is null and e.email_key in (select k from render_keys)",
            query=self.sql.render_emails,
        )

    def messages(self, message_keys: Sequence[str]) -> dict[str, Rendered]:
        """What each of these messages says on its own: its section framed alone."""
        return self._render(
            message_keys,
            stored="select message_key, subject, body_text, body_html from outbox "
            "where body_text is not null and message_key in (select k from render_keys)",
            source="select o.message_key, o.order_id, o.kind, o.state, o.email_key, "
            "1 as email_size, e.to_name, o.customer_id "
            "from outbox as o left join outbox_emails as e using (email_key) "
            "where o.body_text is null and o.message_key in (select k from render_keys)",
            query=self.sql.render_messages,
        )

    def _render(
        self,
        keys: Sequence[str],
        *,
        stored: str,
        source: str,
        query: Callable[[], tuple[str, dict[str, Any]]],
    ) -> dict[str, Rendered]:
        """The stored texts of these keys, and the rest rendered: source's messages staged in
        render_msgs, their sections in render_sections, then the query over them."""
        con = self.con
        con.execute(
            "create or replace temp table render_keys as "
            "select distinct unnest($k::varchar[]) as k",
            {"k": list(keys)},
        )
        out = {
            k: Rendered(subj, text, html_)
            for k, subj, text, html_ in con.execute(stored).fetchall()
        }
        con.execute(
            "create or replace temp table render_msgs as "
            "select row_number() over () as msg_no, s.message_key, s.order_id, s.kind, "
            "json_extract_string(s.state, '$.condition') as condition, "
            "json_extract_string(s.state, '$.promised_date')::date as promised_date, "
            "s.email_key, s.email_size, s.to_name, cu.locale "
            f"from ({source}) as s left join customers as cu using (customer_id)"
        )
        row = con.execute("select count(*) from render_msgs").fetchone()
        if not (row and row[0]):
            return out
        if not self._texts:
            message_sql.fill_text_tables(con)
            self._texts = True
        message_sql.add_message_dates(con)
        con.execute(*self.sql.stage_sections())
        sql, params = query()
        for k, subj, text, html_ in con.execute(sql, params).fetchall():
            out[k] = Rendered(subj, text, html_)
        return out

    def close(self) -> None:
        """Drop the renderer's temp tables."""
        message_sql.drop_temp_tables(self.con)


def render_emails(
    con: duckdb.DuckDBPyConnection, email_keys: Sequence[str], *, discount_code: str = ""
) -> dict[str, Rendered]:
    """The emails with these keys as they would be (or were) sent (see EmailRenderer)."""
    with contextlib.closing(EmailRenderer(con, discount_code=discount_code)) as renderer:
        return renderer.emails(email_keys)


def render_messages(
    con: duckdb.DuckDBPyConnection, message_keys: Sequence[str], *, discount_code: str = ""
) -> dict[str, Rendered]:
    """What each of these messages says on its own (see EmailRenderer)."""
    with contextlib.closing(EmailRenderer(con, discount_code=discount_code)) as renderer:
        return renderer.messages(message_keys)
