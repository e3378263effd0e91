"""Which email a change deserves, its key, and its rendering."""

from __future__ import annotations

from datetime import date
from string import Template

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backorders.domain.messages import (
    DATE_STYLES,
    History,
    Layout,
    LineView,
    OrderState,
    Policy,
    Rendered,
    Templates,
    choose_message,
    compose,
    date_style,
    email_key_for,
    format_date,
    message_key,
    order_state,
    plan_emails,
    render,
    template_parts,
)

pytestmark = pytest.mark.unit
D1, D2 = date(2026, 12, 1), date(2026, 12, 9)


def line(status: str, promised: date | None = None, no: int = 1) -> LineView:
    return LineView(no, f"SKU-{no}", f"Widget {no}", 2, status, promised)


def test_order_with_a_backordered_line_is_backordered_with_its_latest_date() -> None:
    state = order_state(
        [line("allocated", D1, 1), line("promised", D1, 2), line("promised", D2, 3)]
    )
    assert state == OrderState("backordered", D2)


def test_order_with_an_unpromised_line_has_no_date() -> None:
    assert order_state([line("promised", D1, 1), line("unpromised", None, 2)]) == OrderState(
        "backordered", None
    )


def test_not_backorderable_line_dominates_the_order() -> None:
    assert order_state([line("promised", D1, 1), line("not_backorderable", None, 2)]).condition == (
        "not_backorderable"
    )


def test_first_backorder_gets_a_confirmation() -> None:
    assert choose_message(None, OrderState("backordered", D1)) == "backorder_confirmed"


def test_unchanged_promise_gets_no_email() -> None:
    assert choose_message(OrderState("backordered", D1), OrderState("backordered", D1)) is None


@pytest.mark.parametrize(("old", "new"), [(D1, D2), (D2, D1), (D1, None), (None, D1)])
def test_changed_promise_gets_a_promise_changed_email(old: date | None, new: date | None) -> None:
    assert (
        choose_message(OrderState("backordered", old), OrderState("backordered", new))
        == "promise_changed"
    )


def test_backorder_that_is_now_in_stock_gets_ready_to_ship() -> None:
    assert (
        choose_message(OrderState("backordered", D1), OrderState("ready", None)) == "ready_to_ship"
    )


def test_order_in_stock_from_the_start_gets_no_email() -> None:
    assert choose_message(None, OrderState("ready", None)) is None


def test_not_backorderable_gets_one_cancellation_offer() -> None:
    assert choose_message(None, OrderState("not_backorderable", None)) == "cancellation_offer"
    nb = OrderState("not_backorderable", None)
    assert choose_message(nb, nb) is None


def test_message_key_is_deterministic_and_differs_per_promise() -> None:
    a = message_key("C1", "O1", "promise_changed", OrderState("backordered", D1))
    assert a == message_key("C1", "O1", "promise_changed", OrderState("backordered", D1))
    assert a != message_key("C1", "O1", "promise_changed", OrderState("backordered", D2))
    assert a != message_key("C2", "O1", "promise_changed", OrderState("backordered", D1))


def test_state_round_trips_through_json() -> None:
    for s in (OrderState("backordered", D1), OrderState("ready", None)):
        assert OrderState.from_json(s.to_json()) == s


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en-US", "December 9, 2026"),
        ("en-GB", "9 December 2026"),
        ("de-DE", "9. Dezember 2026"),
        ("fr-FR", "9 décembre 2026"),
        (None, "December 9, 2026"),
    ],
)
def test_dates_are_written_in_the_customers_locale(locale: str | None, expected: str) -> None:
    assert format_date(D2, locale) == expected


def test_customer_data_is_html_escaped_and_subject_stays_on_one_line() -> None:
    t = Templates(
        "Order $order_id for $customer_name",
        "Hi $customer_name\n$lines",
        "<p>$customer_name</p><ul>$lines</ul>",
    )
    out = render(
        t,
        customer_name="<script>x</script>\r\nBcc: evil@x.test",
        order_id="O1",
        state=OrderState("backordered", D1),
        lines=[LineView(1, "S", "<b>Bold</b>", 1, "promised", D1)],
        locale="en-US",
    )
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "<b>Bold</b>" not in out.html
    assert "\n" not in out.subject and "\r" not in out.subject
    assert "December 1, 2026" in out.text


POLICY = Policy(delay_apology_days=14, max_wait_days=90)
PLACED = date(2026, 11, 1)


def test_delay_past_the_configured_days_gets_one_apology() -> None:
    first = History(first_promised_date=D1)
    late = OrderState("backordered", date(2026, 12, 20))  # 19 days past the first promise
    prev = OrderState("backordered", D2)
    assert choose_message(prev, late, history=first, policy=POLICY) == "delay_apology"
    apologized = History(first_promised_date=D1, apologized=True)
    assert choose_message(prev, late, history=apologized, policy=POLICY) == "promise_changed"


def test_small_slip_is_a_plain_promise_change() -> None:
    first = History(first_promised_date=D1)
    assert (
        choose_message(
            OrderState("backordered", D1),
            OrderState("backordered", D2),
            history=first,
            policy=POLICY,
        )
        == "promise_changed"
    )


def test_wait_past_the_maximum_gets_one_cancellation_offer() -> None:
    far = OrderState("backordered", date(2027, 3, 1))  # 120 days after the order
    assert choose_message(None, far, policy=POLICY, placed_on=PLACED) == "cancellation_offer"
    offered = History(cancellation_offered=True)
    assert (
        choose_message(None, far, history=offered, policy=POLICY, placed_on=PLACED)
        == "backorder_confirmed"
    )


def test_no_date_counts_as_waiting_until_today() -> None:
    undated = OrderState("backordered", None)
    kw = {"policy": POLICY, "placed_on": PLACED}
    assert choose_message(undated, undated, today=date(2026, 12, 1), **kw) is None
    assert choose_message(undated, undated, today=date(2027, 3, 1), **kw) == "cancellation_offer"


def test_several_orders_of_one_customer_make_one_email_with_one_section_each() -> None:
    layout = Layout(
        "Updates on your orders $order_ids",
        "Hi $customer_name\n$sections",
        "<p>$customer_name</p>$sections",
    )
    parts = [
        ("O1", Rendered("s1", "about O1\n", "<p>O1</p>")),
        ("O2", Rendered("s2", "about O2\n", "<p>O2</p>")),
    ]
    out = compose(layout, customer_name="<Ann>", parts=parts)
    assert out.subject == "Updates on your orders O1, O2"
    assert "about O1" in out.text and "about O2" in out.text
    assert "&lt;Ann&gt;" in out.html and "<Ann>" not in out.html
    single = compose(layout, customer_name="Ann", parts=parts[:1])
    assert single.subject == "s1"


NAMES = ("order_id", "customer_name", "lines")


@given(
    template=st.text(alphabet="$ {}_ab9\n", max_size=30).map(
        lambda t: t.replace("a", "order_id").replace("b", "customer_name")
    ),
    values=st.fixed_dictionaries({n: st.text(alphabet="$&<{}x ", max_size=5) for n in NAMES}),
)
def test_template_parts_say_what_safe_substitute_does(
    template: str, values: dict[str, str]
) -> None:
    parts = template_parts(template, NAMES)
    joined = "".join(literal + (values[name] if name else "") for literal, name in parts)
    assert joined == Template(template).safe_substitute(values)


@pytest.mark.parametrize(
    "locale", [None, "", "en-US", "en_US", "en-GB", "de", "de-AT", "fr-CA", "es"]
)
@pytest.mark.parametrize("d", [None, D1, date(2027, 3, 1)])
def test_date_style_is_all_that_format_date_takes_from_the_locale(
    locale: str | None, d: date | None
) -> None:
    style = date_style(locale)
    assert style in DATE_STYLES and date_style(style) == style
    assert format_date(d, locale) == format_date(d, style)


def test_one_email_per_customer_and_status_by_order_id_up_to_the_cap() -> None:
    msgs = [
        ("C1", "pending", "O3", "k3"),
        ("C1", "pending", "O1", "k1"),
        ("C1", "suppressed", "O2", "k2"),
        ("C1", "pending", "O2", "k4"),
        ("C2", "pending", "O9", "k9"),
    ]
    assert plan_emails(msgs, max_per_email=2) == [("k1", "k4"), ("k3",), ("k2",), ("k9",)]
    assert email_key_for(["k9"]) == "k9"
    assert email_key_for(["k1", "k4"]) == email_key_for(["k4", "k1"]) != "k1"
