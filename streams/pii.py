"""PII redaction: e-mail addresses, phone numbers, payment card numbers, IBANs and @handles.

Runs before anything is stored or sent. Every pattern is anchored so that a match can only start at
the beginning of a run of candidate characters and uses possessive quantifiers, so the regex engine
never re-scans a run: redaction is linear in the text length, whatever the input (long runs of
digits and spaces, ``a@a@a@…`` and the like).

Numbers are only redacted when they look like what they claim to be: a card number must pass the
Luhn check, and a phone number needs a ``+`` country code, phone-like grouping or a nearby word such
as "call" or "phone". Years, prices, order numbers, dates and times stay as they are. An IBAN must
pass its ISO 13616 mod-97 check. ``@handles`` of people are redacted unless they are in the
caller's allow-list (the brands' own handles from configuration); handles inside URLs
(``https://mastodon.social/@brand``) and e-mail addresses are not handles.
"""

from __future__ import annotations

import re
from collections.abc import Collection

EMAIL_TOKEN = "[email]"
PHONE_TOKEN = "[phone]"
CARD_TOKEN = "[card]"
IBAN_TOKEN = "[iban]"
HANDLE_TOKEN = "[handle]"

_EMAIL = re.compile(
    r"(?<![\w.%+@-])[\w.%+-]++@(?:[A-Za-z0-9-]++\.)+[A-Za-z]{2,}+(?![\w-])",
)
# Country code, two check digits, then 11-30 letters and digits, optionally in groups of four.
_IBAN = re.compile(
    r"(?<![\w/#])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}+(?: ?[A-Z0-9]{1,3})?+(?![\w-])",
)
# @name, @name.bsky.social, @name@instance.social; not inside a word, URL path or e-mail address.
_HANDLE = re.compile(
    r"(?<![\w@/.:+-])@(\w{1,64}+(?:\.[A-Za-z0-9-]++)*+(?:@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)++)?+)"
    r"(?![\w@])",
)
# Numbers right after "/" or "#" (URL paths such as status ids, order numbers) or after a decimal
# point are identifiers or fractions, not card or phone numbers.
_NOT_AFTER = r"(?<![\w+/#])(?<!\d\.)"
# A run of digits joined by single spaces or dashes (how card numbers are written).
_CARD_RUN = re.compile(_NOT_AFTER + r"\d(?:[ -]?\d)*+")
# A run of phone-ish characters starting with an optional "+" or "(" and a digit.
_PHONE_RUN = re.compile(_NOT_AFTER + r"(?:\+ ?)?\(?\d[\d .()-]*+")
_DIGIT_GROUPS = re.compile(r"\d+")
_PHONE_CONTEXT = re.compile(
    r"\b(?:call|called|calling|phone|tel|telephone|mobile|cell|text|whatsapp|ring|"
    r"reach|contact|dial)\b[^\n]{0,15}$",
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}(?!\d)|\d{1,2}[-./]\d{1,2}[-./]\d{4}")
_TRAILING_NON_DIGITS = " .()-"
_MIN_PHONE_DIGITS = 7


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum used by payment cards."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """Whether an IBAN (spaces allowed) passes the ISO 13616 mod-97 check."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isascii() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


def _is_card(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _looks_like_phone(candidate: str, has_context: bool) -> bool:
    groups = _DIGIT_GROUPS.findall(candidate)
    digits = "".join(groups)
    count = len(digits)
    if candidate.startswith("+"):
        # International format: E.164 allows up to 15 digits; the country code may stand alone.
        return 8 <= count <= 15 and len(groups) <= 7
    if _DATE.match(candidate):
        return False
    if has_context:
        return _MIN_PHONE_DIGITS <= count <= 15
    if len(groups) == 1:
        # Unseparated: only national numbers with a trunk prefix (07700900123, 0151…).
        return digits.startswith("0") and 10 <= count <= 11
    if count == 7:
        # North American local number: 555-1234 or 555.1234.
        return re.fullmatch(r"\d{3}[-.]\d{4}", candidate) is not None
    if not 10 <= count <= 13 or len(groups) > 6:
        return False
    if any(len(group) < 2 for group in groups[1:]):
        return False
    if len(groups[-1]) < 3 and not digits.startswith("0"):
        return False  # only trunk-prefixed national numbers end in pairs: 01 23 45 67 89
    lengths = {len(group) for group in groups}
    # "10 20 30 40 50" is a list of numbers; "01 23 45 67 89" is a phone number.
    return not (len(lengths) == 1 and max(lengths) <= 2 and not digits.startswith("0"))


def _ascii_digits(text: str) -> int:
    """How many of the characters 0-9 an ASCII ``text`` holds (one pass in C, unlike ten
    ``str.count``)."""
    data = text.encode()
    return len(data) - len(data.translate(None, b"0123456789"))


def redact(text: str, allow_handles: Collection[str] | None = None) -> tuple[str, int]:
    """Replace e-mails, phone numbers, card numbers, IBANs and @handles with placeholders.

    Returns the redacted text (``[email]``, ``[phone]``, ``[card]``, ``[iban]``, ``[handle]`` in
    place of each item) and the number of items replaced. ``allow_handles`` lists handles that stay
    (compared case-insensitively, with or without the leading ``@``): the brands' own accounts.
    Linear in ``len(text)``.
    """
    # Phone numbers have at least 7 digits, card numbers 13 (IBANs are only looked for beside
    # them): most texts have fewer and no "@", and skip every scan (outside ASCII, \d also
    # matches other scripts' digits, so those texts are scanned).
    has_at = "@" in text
    if not has_at and text.isascii() and _ascii_digits(text) < _MIN_PHONE_DIGITS:
        return text, 0
    count = 0
    allowed = {h.lower().lstrip("@") for h in allow_handles} if allow_handles else set()

    def iban(match: re.Match[str]) -> str:
        nonlocal count
        if not iban_ok(match.group()):
            return match.group()
        count += 1
        return IBAN_TOKEN

    def handle(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(1).lower() in allowed:
            return match.group()
        count += 1
        return HANDLE_TOKEN

    def email(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return EMAIL_TOKEN

    def card(match: re.Match[str]) -> str:
        nonlocal count
        candidate = match.group()
        if not _is_card(candidate):
            return candidate
        count += 1
        return CARD_TOKEN

    def phone(match: re.Match[str]) -> str:
        nonlocal count
        run = match.group()
        candidate = run.rstrip(_TRAILING_NON_DIGITS)
        if candidate.startswith("(") and candidate.count("(") != candidate.count(")"):
            # "(555) 123-4567" keeps its bracket; an unmatched one belongs to the prose.
            candidate = candidate[1:]
        start = match.start() + run.index(candidate)
        end = start + len(candidate)
        if end < len(text) and (text[end].isalnum() or text[end] == "_"):
            return run  # "5pm", "555-1234abc": part of a word, not a phone number
        if not _MIN_PHONE_DIGITS <= sum(char.isdigit() for char in candidate) <= 15:
            return run
        context = _PHONE_CONTEXT.search(text, max(0, start - 40), start) is not None
        if not _looks_like_phone(candidate, context):
            return run
        count += 1
        return run.replace(candidate, PHONE_TOKEN, 1)

    if has_at:
        text = _EMAIL.sub(email, text)
        text = _HANDLE.sub(handle, text)
    # Counted after the e-mails and handles are replaced, as their digits are gone then.
    if not text.isascii() or _ascii_digits(text) >= _MIN_PHONE_DIGITS:
        text = _IBAN.sub(iban, text)
        text = _CARD_RUN.sub(card, text)
        text = _PHONE_RUN.sub(phone, text)
    return text, count
