"""PII corpus: 100% recall on the structured kinds, IBAN and @handle redaction, brand allow-list."""

from __future__ import annotations

import json

import pytest

from bench.pii import CORPUS, STRUCTURED, evaluate
from streams.pii import iban_ok, redact


def test_structured_kinds_have_full_recall_and_precision() -> None:
    report = evaluate()
    for kind in STRUCTURED:
        row = report["kinds"][kind]
        assert row["labelled"] >= 5, kind
        assert row["recall"] == 1.0, (kind, report["misses"])
        assert row["precision"] == 1.0, kind


def test_lines_without_pii_come_out_unchanged() -> None:
    for raw in CORPUS.read_text(encoding="utf-8").splitlines():
        entry = json.loads(raw)
        if not entry["pii"]:
            assert redact(entry["text"], allow_handles=["acme"]) == (entry["text"], 0)


def test_iban_needs_a_valid_check() -> None:
    assert iban_ok("DE89 3704 0044 0532 0130 00")
    assert not iban_ok("DE88 3704 0044 0532 0130 00")
    assert redact("to GB82 WEST 1234 5698 7654 32.") == ("to [iban].", 1)
    assert redact("to GB83 WEST 1234 5698 7654 32.")[0].startswith("to GB83 WEST")


def test_handles_are_redacted_unless_allowed() -> None:
    text = "@Acme ask @jane_doe or @bob.bsky.social or @carol@mastodon.social"
    assert redact(text) == ("[handle] ask [handle] or [handle] or [handle]", 4)
    assert redact(text, allow_handles=["@acme"])[0].startswith("@Acme ask [handle]")
    assert redact("https://mastodon.social/@acme/1 and jane@example.com") == (
        "https://mastodon.social/@acme/1 and [email]",
        1,
    )


@pytest.mark.parametrize(
    "hostile",
    ["@" * 200_000, "@a" * 100_000, "@a." * 100_000, "DE89 " * 100_000, "GB82WEST" * 50_000],
)
def test_hostile_handle_and_iban_inputs_complete(hostile: str) -> None:
    text, count = redact(hostile)
    assert count >= 0 and len(text) <= len(hostile) * 2
