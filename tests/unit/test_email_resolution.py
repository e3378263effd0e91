"""Pure rules: dynamic template ids, template data size, resolving unknown outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backorders.domain.email import (
    MAX_TEMPLATE_DATA_BYTES,
    TEMPLATE_SLOTS,
    ActivityLookup,
    OutgoingEmail,
    is_dynamic_template_id,
    resolve_unknown,
    template_data_bytes,
    validate_template_ids,
)

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 23, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("d-" + "0123456789abcdef" * 2, True),
        ("d-" + "a" * 31, False),
        ("d-" + "a" * 33, False),
        ("d-" + "A" * 32, False),
        ("D-" + "a" * 32, False),
        ("0f6ae7f6-1b8c-4a4e-9a59-4bcb0dd5d0d1", False),  # a legacy template, not dynamic
        ("", False),
        (" d-" + "a" * 32, False),
        ("d-" + "a" * 32 + "\n", False),
    ],
)
def test_dynamic_template_ids(value: str, ok: bool) -> None:
    assert is_dynamic_template_id(value) is ok


def test_template_ids_cover_every_kind_and_combined() -> None:
    ids = {slot: "d-" + "0" * 32 for slot in TEMPLATE_SLOTS}
    assert validate_template_ids(ids) == ids
    assert "combined" in TEMPLATE_SLOTS and len(TEMPLATE_SLOTS) == 6


def test_bad_template_ids_name_every_problem() -> None:
    with pytest.raises(ValueError) as err:
        validate_template_ids({"promise_changed": "d-123", "ready": "d-" + "0" * 32})
    text = str(err.value)
    assert "promise_changed: 'd-123' is not a SendGrid dynamic template id" in text
    assert "'ready' is not a message kind" in text


def test_template_data_is_measured_as_sent() -> None:
    assert template_data_bytes({"a": "é"}) == len('{"a": "\\u00e9"}')
    assert template_data_bytes({"x": "y" * MAX_TEMPLATE_DATA_BYTES}) > MAX_TEMPLATE_DATA_BYTES


def test_template_data_does_not_make_emails_unhashable() -> None:
    e = OutgoingEmail("k", "a@b.co", None, "s", "t", "h", template_id="d-" + "0" * 32)
    with_data = OutgoingEmail(
        "k", "a@b.co", None, "s", "t", "h", template_id="d-" + "0" * 32, template_data={"x": [1]}
    )
    assert hash(e) == hash(with_data) and e == with_data


LOOKUP = ActivityLookup(found={"a": "xid.filter-0.0"}, not_found=frozenset({"b"}))


@pytest.mark.parametrize(
    ("key", "waited_s", "settle_s", "expected"),
    [
        ("a", 0, 1800, "sent"),  # found: SendGrid has it, whenever we ask
        ("b", 1800, 1800, "requeue"),  # not found once the feed has had time: never accepted
        ("b", 1799, 1800, "wait"),  # not found yet: the feed may lag
        ("b", 0, 0, "requeue"),
        ("c", 99_999, 0, "unresolved"),  # not looked up at all
    ],
)
def test_resolve_unknown(key: str, waited_s: float, settle_s: float, expected: str) -> None:
    got = resolve_unknown(
        key,
        LOOKUP,
        unknown_since=T0,
        looked_up_at=T0 + timedelta(seconds=waited_s),
        settle_s=settle_s,
    )
    assert got == expected


def test_a_failed_lookup_resolves_nothing() -> None:
    failed = ActivityLookup(error="HTTP 403: access forbidden")
    for key in ("a", "b"):
        assert (
            resolve_unknown(
                key, failed, unknown_since=T0, looked_up_at=T0 + timedelta(days=1), settle_s=0
            )
            == "unresolved"
        )
