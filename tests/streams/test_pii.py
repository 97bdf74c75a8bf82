"""PII redaction: what must go, what must stay, and that hostile input cannot stall it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.pii import _ascii_digits, luhn_ok, redact


@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "(555) 123-4567",
        "555-123-4567",
        "+1-202-555-0143",
        "0151 496 0123",
        "555.123.4567",
        "1-800-555-1234",
        "+442079460958",
        "07700 900123",
        "07700900123",
        "+33 1 23 45 67 89",
        "01 23 45 67 89",
    ],
)
def test_phone_numbers_are_redacted(phone: str) -> None:
    text, count = redact(f"Ring me back on {phone}, nobody has replied in days.")
    assert text == "Ring me back on [phone], nobody has replied in days."
    assert count == 1


def test_phone_at_end_of_sentence_keeps_punctuation() -> None:
    assert redact("My number is 555-123-4567.") == ("My number is [phone].", 1)
    assert redact("Call me (mobile: 07700 900123)") == ("Call me (mobile: [phone])", 1)


def test_phone_in_a_url_query_is_redacted() -> None:
    assert redact("https://example.com/cb?phone=555-123-4567") == (
        "https://example.com/cb?phone=[phone]",
        1,
    )


def test_local_number_with_call_context() -> None:
    assert redact("please call me on 5551234 asap") == ("please call me on [phone] asap", 1)


@pytest.mark.parametrize(
    "email", ["jane.doe@example.com", "bob+support@mail.example.co.uk", "x_y-z@sub-domain.io"]
)
def test_emails_are_redacted(email: str) -> None:
    assert redact(f"Email me at {email}. Thanks") == ("Email me at [email]. Thanks", 1)


@pytest.mark.parametrize(
    "card", ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "378282246310005"]
)
def test_luhn_valid_card_numbers_are_redacted(card: str) -> None:
    assert redact(f"They charged my card {card} twice!") == (
        "They charged my card [card] twice!",
        1,
    )


@pytest.mark.parametrize(
    "text",
    [
        "My card 1234 5678 9012 3456 was declined",  # 16 digits failing the Luhn check
        "1234567890123456",
        "call me at 5pm",
        "order #123456 never arrived",
        "in 2024 they were better",
        "I waited 2 hours and 45 minutes",
        "It cost $1,299.99 and broke after 3 days",
        "Delivered on 2024-01-15 10:30, broken",
        "Scores went 10 20 30 40 50 over the week",
        "Their server at 192.168.1.1 is down",
        "order number 12345678 is missing",
        "version 2.3.4 broke sync",
        "from 1990-2000 they were great",
        "ticket 44-1234 closed without answer",
        "Call me at 555",
        "see https://twitter.com/acme/status/1234567890123456785",  # Luhn-valid status id
        "https://example.com/track/0123456789 says lost",
        "pi is 3.14159265358976",  # Luhn-valid digits after the decimal point
    ],
)
def test_ordinary_numbers_are_not_redacted(text: str) -> None:
    assert redact(text) == (text, 0)


def test_counts_every_item_and_leaves_the_rest() -> None:
    text = (
        "I'm jane@example.com, phone +1-202-555-0143, card 4111 1111 1111 1111. "
        "Order #98765 from 2024 still missing after 3 weeks."
    )
    redacted, count = redact(text)
    assert count == 3
    assert redacted == (
        "I'm [email], phone [phone], card [card]. "
        "Order #98765 from 2024 still missing after 3 weeks."
    )


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")


@pytest.mark.parametrize(
    "hostile",
    [
        "1 " * 500_000,
        "1-" * 500_000,
        "9" * 1_000_000,
        "a@" * 500_000,
        "a@" + "b." * 500_000,
        "x." * 500_000 + "@",
        "+1 " * 300_000,
        "(1" * 500_000,
        "(555) 123-" * 100_000,
        "x@y." * 250_000 + "1",
    ],
)
def test_hostile_inputs_finish(hostile: str) -> None:
    text, count = redact(hostile)
    assert count == 0
    assert text == hostile


def test_megabyte_of_random_digits_and_spaces() -> None:
    rng = random.Random(7)
    text = "".join(rng.choice("0123456789 ") for _ in range(1_000_000))
    redacted, count = redact(text)
    # Runs of 13-19 digits that happen to pass the Luhn check are redacted; nothing else.
    assert redacted.count("[card]") + redacted.count("[phone]") == count
    assert len(redacted) <= len(text)


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_digit_count_of_the_prefilter_is_the_count_of_0_to_9(text: str) -> None:
    # redact skips every scan for an ASCII text without "@" and with fewer than 7 digits, as
    # counted by this: it must count exactly the characters 0-9.
    assert _ascii_digits(text) == sum(text.count(d) for d in "0123456789")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no digits, no at sign: stays", ("no digits, no at sign: stays", 0)),
        ("order 123456 shipped", ("order 123456 shipped", 0)),
        ("call 555-1234 now", ("call [phone] now", 1)),
        # Six digits left once the e-mail is replaced: no number scan, as before.
        ("a1234567@example.com or 123 456", ("[email] or 123 456", 1)),
        ("ring ٥٥٥١٢٣٤٥٦٧ please", ("ring [phone] please", 1)),
    ],
)
def test_texts_around_the_prefilter_limits(text: str, expected: tuple[str, int]) -> None:
    assert redact(text) == expected
