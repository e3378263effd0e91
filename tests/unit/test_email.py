"""Pure tests for the e-mail domain helpers (no I/O)."""

from __future__ import annotations

import dataclasses
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backorders.domain.email import (
    OutgoingEmail,
    SendOutcome,
    is_deliverable_address,
    safe_header_value,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "address",
    [
        "a@b.co",
        "first.last+tag@sub.example.com",
        "o'brien@example.ie",
        "ORDERS_2024@Example.COM",
        "user@xn--mnchen-3ya.de",
        "jürgen@müller.de",
    ],
)
def test_plausible_addresses_are_deliverable(address: str) -> None:
    assert is_deliverable_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "plainaddress",
        "@example.com",
        "user@",
        "user@localhost",
        "user@@example.com",
        "a@b@example.com",
        "user name@example.com",
        " user@example.com",
        "user@example.com ",
        "user@example.com\r\nBcc: victim@example.org",
        "user@example.com\nX-Injected: 1",
        "a@example.com,b@example.com",
        "a@example.com;b@example.com",
        "Name <user@example.com>",
        "<user@example.com>",
        "user@.example.com",
        "user@example..com",
        "user@example.com.",
        "user@-example.com",
        "user@example.c",
        "user\x00@example.com",
        "user\u202e@example.com",
        "x" * 65 + "@example.com",
        "user@" + "a" * 250 + ".com",
    ],
)
def test_malformed_or_injecting_addresses_are_not_deliverable(address: str) -> None:
    assert not is_deliverable_address(address)


def test_crlf_in_header_value_becomes_a_single_space() -> None:
    assert safe_header_value("Your order\r\nBcc: victim@example.org") == (
        "Your order Bcc: victim@example.org"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\nb", "a b"),
        ("a\rb", "a b"),
        ("a\r\n\r\nb", "a b"),
        ("a\tb", "a b"),
        ("a\x00b", "ab"),
        ("a\x1bb", "ab"),
        ("a\x7fb", "ab"),
        ("a\u2028b", "a b"),
        ("a\x85b", "a b"),
        ("a\u202eb", "ab"),
        ("  padded\n", "padded"),
        ("", ""),
    ],
)
def test_control_characters_are_removed_from_header_values(raw: str, expected: str) -> None:
    assert safe_header_value(raw) == expected


def test_ordinary_unicode_subject_is_kept_unchanged() -> None:
    subject = "Bestellung für Müller — Rückstand ✓ (Nr. 42)"
    assert safe_header_value(subject) == subject


@given(st.text())
def test_header_value_never_contains_line_breaks_or_controls(raw: str) -> None:
    cleaned = safe_header_value(raw)
    assert "\r" not in cleaned and "\n" not in cleaned
    assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in cleaned)


@given(st.text())
def test_header_sanitising_is_idempotent(raw: str) -> None:
    once = safe_header_value(raw)
    assert safe_header_value(once) == once


@given(st.text())
def test_address_with_line_break_is_never_deliverable(local: str) -> None:
    assert not is_deliverable_address(f"{local}\r\n@example.com")
    assert not is_deliverable_address(f"user@example.com\n{local}")


def test_email_and_outcome_are_immutable() -> None:
    email = OutgoingEmail("k1", "a@b.co", None, "s", "t", "<p>t</p>")
    outcome = SendOutcome("k1", "sent", "id-1", None, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        email.subject = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.status = "failed"  # type: ignore[misc]
    assert email.categories == ()
