"""Which email an order's change deserves, its deterministic key, and its text."""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from string import Template
from typing import Literal

MessageKind = Literal[
    "backorder_confirmed",
    "promise_changed",
    "delay_apology",
    "ready_to_ship",
    "cancellation_offer",
]
OrderCondition = Literal["backordered", "ready", "not_backorderable", "closed"]

BACKORDERED = frozenset({"promised", "unpromised", "partially_allocated"})


@dataclass(frozen=True)
class LineView:
    """One line as the customer sees it."""

    line_no: int
    sku: str
    product_name: str
    qty: int
    status: str
    promised_date: date | None
    substitutes: tuple[str, ...] = ()


@dataclass(frozen=True)
class OrderState:
    """What we would tell the customer about an order now."""

    condition: OrderCondition
    promised_date: date | None  # the order's date: its latest line date, None if any line has none

    def to_json(self) -> str:
        """Canonical JSON, stored with each message as what the customer was told."""
        d = self.promised_date.isoformat() if self.promised_date else None
        return json.dumps({"condition": self.condition, "promised_date": d}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> OrderState:
        """Inverse of to_json."""
        d = json.loads(text)
        pd = date.fromisoformat(d["promised_date"]) if d["promised_date"] else None
        return OrderState(d["condition"], pd)


def order_state(lines: Sequence[LineView]) -> OrderState:
    """Fold an order's open lines into one condition and one promised date."""
    statuses = {ln.status for ln in lines}
    if "not_backorderable" in statuses:
        cond: OrderCondition = "not_backorderable"
    elif statuses & BACKORDERED:
        cond = "backordered"
    elif statuses and statuses <= {"allocated"}:
        cond = "ready"
    else:
        cond = "closed"
    dates = [ln.promised_date for ln in lines if ln.status in BACKORDERED]
    promised = max(d for d in dates if d is not None) if dates and None not in dates else None
    return OrderState(cond, promised if cond == "backordered" else None)


@dataclass(frozen=True)
class History:
    """What earlier messages of an order already told: the first date, apology, offer."""

    first_promised_date: date | None = None
    apologized: bool = False
    cancellation_offered: bool = False


@dataclass(frozen=True)
class Policy:
    """When a delay earns an apology, and when a wait earns a cancellation offer."""

    delay_apology_days: int | None = None  # slip past the first promise; None: never
    max_wait_days: int | None = None  # from order to delivery; None: never


def choose_message(
    previous: OrderState | None,
    current: OrderState,
    *,
    history: History = History(),
    policy: Policy = Policy(),
    placed_on: date | None = None,
    today: date | None = None,
) -> MessageKind | None:
    """The email a change deserves; None when the customer needs no news."""
    if current.condition == "not_backorderable":
        if previous is None or previous.condition != "not_backorderable":
            return "cancellation_offer"
        return None
    if current.condition == "backordered":
        if _waits_too_long(current, history, policy, placed_on, today):
            return "cancellation_offer"
        if previous is None or previous.condition != "backordered":
            return "backorder_confirmed"
        if previous.promised_date != current.promised_date:
            if _deserves_apology(current, history, policy, today):
                return "delay_apology"
            return "promise_changed"
        return None
    if (
        current.condition == "ready"
        and previous is not None
        and previous.condition == "backordered"
    ):
        return "ready_to_ship"
    return None


def _waits_too_long(
    current: OrderState,
    history: History,
    policy: Policy,
    placed_on: date | None,
    today: date | None,
) -> bool:
    """Past the maximum wait (from order to promised date, or to today without a date)."""
    if policy.max_wait_days is None or history.cancellation_offered or placed_on is None:
        return False
    until = current.promised_date or today
    return until is not None and (until - placed_on).days > policy.max_wait_days


def _deserves_apology(
    current: OrderState, history: History, policy: Policy, today: date | None
) -> bool:
    """Once per order: the date slipped past the first promise by the configured days."""
    first = history.first_promised_date
    if policy.delay_apology_days is None or history.apologized or first is None:
        return False
    until = current.promised_date or today  # a lost date has slipped at least until today
    return until is not None and (until - first).days >= policy.delay_apology_days


def message_key(customer_id: str, order_id: str, kind: MessageKind, state: OrderState) -> str:
    """Deterministic key: the same event for the same promise always gets the same key."""
    raw = "\x1f".join([customer_id, order_id, kind, state.to_json()])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def preview_key(key: str) -> str:
    """A dry run's key for the message `key`: a preview never blocks the real message."""
    return hashlib.sha256(f"preview\x1f{key}".encode()).hexdigest()[:32]


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTHS_DE = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
]
_MONTHS_FR = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]


DateStyle = Literal["en-US", "en-GB", "de", "fr"]
DATE_STYLES: tuple[DateStyle, ...] = ("en-US", "en-GB", "de", "fr")


def date_style(locale: str | None) -> DateStyle:
    """How a locale writes dates: all that format_date takes from the locale."""
    lang = (locale or "en-US").replace("_", "-")
    if lang.startswith("de"):
        return "de"
    if lang.startswith("fr"):
        return "fr"
    return "en-US" if lang == "en-US" else "en-GB"


def format_date(d: date | None, locale: str | None) -> str:
    """A date as the customer's locale writes it; a clear phrase when there is none."""
    style = date_style(locale)
    if d is None:
        return {"de": "noch kein Datum", "fr": "pas encore de date"}.get(style, "no date yet")
    if style == "de":
        return f"{d.day}. {_MONTHS_DE[d.month - 1]} {d.year}"
    if style == "fr":
        return f"{d.day} {_MONTHS_FR[d.month - 1]} {d.year}"
    if style == "en-US":
        return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


@dataclass(frozen=True)
class Templates:
    """Subject, plain-text and HTML templates for one message kind ($name placeholders)."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Rendered:
    """A message ready to send."""

    subject: str
    text: str
    html: str


_LINE_STATUS_TEXT = {
    "allocated": "in stock, ready to ship",
    "promised": "expected {date}",
    "partially_allocated": "partly in stock; the rest has no date yet",
    "unpromised": "no date yet",
    "not_backorderable": "no longer available",
}
MAX_SUBSTITUTES_SHOWN = 5


def line_status_text(status: str, promised_date: date | None, locale: str | None) -> str:
    """What a line's status tells the customer ("expected 9 December 2026", ...)."""
    return _LINE_STATUS_TEXT.get(status, status).format(date=format_date(promised_date, locale))


def _line_text(ln: LineView, locale: str | None) -> str:
    status = line_status_text(ln.status, ln.promised_date, locale)
    shown = ", ".join(ln.substitutes[:MAX_SUBSTITUTES_SHOWN])
    subs = f" (alternatives in stock: {shown})" if ln.substitutes else ""
    return f"{ln.qty} x {ln.product_name} [{ln.sku}]: {status}{subs}"


TEXT_SECTION_SEPARATOR = "\n" + "-" * 40 + "\n\n"  # between the sections of an email
HTML_SECTION_SEPARATOR = "<hr>"


@dataclass(frozen=True)
class Layout:
    """The frame around one or more messages: greeting, sections, sign-off."""

    subject_many: str  # subject of an email that combines several orders ($order_ids)
    text: str  # $customer_name, $sections
    html: str


def compose(
    layout: Layout,
    *,
    customer_name: str | None,
    parts: Sequence[tuple[str, Rendered]],
) -> Rendered:
    """One email for one customer from the rendered sections of one or more orders."""
    name = customer_name or "customer"
    text_sep = TEXT_SECTION_SEPARATOR
    if len(parts) == 1:
        subject = parts[0][1].subject
    else:
        ids = ", ".join(dict.fromkeys(order_id for order_id, _ in parts))
        subject = Template(layout.subject_many).safe_substitute(order_ids=ids)
    text = Template(layout.text).safe_substitute(
        customer_name=name, sections=text_sep.join(r.text for _, r in parts)
    )
    html_ = Template(layout.html).safe_substitute(
        customer_name=html.escape(name),
        sections=HTML_SECTION_SEPARATOR.join(r.html for _, r in parts),
    )
    return Rendered(" ".join(subject.split()), text, html_)


def render(
    templates: Templates,
    *,
    customer_name: str | None,
    order_id: str,
    state: OrderState,
    lines: Sequence[LineView],
    locale: str | None,
    extra: Mapping[str, str] | None = None,
) -> Rendered:
    """Fill a kind's templates; customer data is HTML-escaped in the HTML part."""
    line_texts = [_line_text(ln, locale) for ln in lines]
    values = {
        "customer_name": customer_name or "customer",
        "order_id": order_id,
        "promised_date": format_date(state.promised_date, locale),
        "lines": "\n".join(f"- {t}" for t in line_texts),
        **(extra or {}),
    }
    html_values = {k: html.escape(v) for k, v in values.items()}
    html_values["lines"] = "".join(f"<li>{html.escape(t)}</li>" for t in line_texts)
    subject = Template(templates.subject).safe_substitute(values)
    return Rendered(
        subject=" ".join(subject.split()),  # one line: no header injection through names
        text=Template(templates.text).safe_substitute(values),
        html=Template(templates.html).safe_substitute(html_values),
    )


def template_parts(template: str, names: Collection[str]) -> tuple[tuple[str, str | None], ...]:
    """A template as (literal, placeholder) pairs: what safe_substitute with `names` does.

    Joining each literal with the value of its placeholder (None: nothing) gives
    Template(template).safe_substitute(values) for any values of exactly these names:
    `$$` is a literal `$`; unknown names and stray `$` stay as written. The SQL renderer
    (adapters/message_sql.py) compiles templates from these parts.
    """
    parts: list[tuple[str, str | None]] = []
    literal: list[str] = []
    pos = 0
    for m in Template.pattern.finditer(template):
        literal.append(template[pos : m.start()])
        pos = m.end()
        name = m.group("named") or m.group("braced")
        if name is not None and name in names:
            parts.append(("".join(literal), name))
            literal = []
        elif m.group("escaped") is not None:
            literal.append(Template.delimiter)
        else:
            literal.append(m.group())
    literal.append(template[pos:])
    parts.append(("".join(literal), None))
    return tuple(parts)


def email_key_for(message_keys: Sequence[str]) -> str:
    """The key of an email: its message's key, or a hash of the keys it combines."""
    if len(message_keys) == 1:
        return message_keys[0]
    raw = "\x1f".join(sorted(message_keys))
    return "e" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:31]


def plan_emails(
    messages: Iterable[tuple[str, str, str, str]], *, max_per_email: int
) -> list[tuple[str, ...]]:
    """One email per customer and status for one run's (customer_id, status, order_id, key).

    Each email lists its message keys by order_id, at most `max_per_email` of them.
    """
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for customer_id, status, order_id, key in messages:
        groups.setdefault((customer_id, status), []).append((order_id, key))
    emails = []
    for members in groups.values():
        members.sort()
        for i in range(0, len(members), max_per_email):
            emails.append(tuple(key for _, key in members[i : i + max_per_email]))
    return emails
