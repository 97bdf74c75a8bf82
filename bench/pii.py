"""PII redaction quality on the labelled corpus ``tests/data/pii_corpus.jsonl``.

Each corpus line is ``{"text": ..., "pii": [{"kind": ..., "value": ...}]}``. For every kind
(email, phone, card, iban, handle, address):

* recall = labelled items whose value no longer appears in the redacted text / labelled items;
* precision = placeholders of the kind that replace a labelled item / all placeholders of the kind
  (a placeholder in a line with fewer labelled items of that kind is a false positive).

Usage: ``.venv/bin/python bench/pii.py`` prints the table and writes ``bench/results/pii.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from streams import pii  # noqa: E402

CORPUS = REPO / "tests" / "data" / "pii_corpus.jsonl"
RESULTS = REPO / "bench" / "results" / "pii.json"
TOKENS = {
    "email": pii.EMAIL_TOKEN,
    "phone": pii.PHONE_TOKEN,
    "card": pii.CARD_TOKEN,
    "iban": pii.IBAN_TOKEN,
    "handle": pii.HANDLE_TOKEN,
}
KINDS = ("email", "phone", "card", "iban", "handle", "address")
STRUCTURED = ("email", "phone", "card", "iban")
BRAND_HANDLES = ("acme",)


def evaluate(corpus: Path = CORPUS) -> dict[str, Any]:
    """Recall and precision per kind on ``corpus`` (brand handle ``@acme`` allowed)."""
    found = dict.fromkeys(KINDS, 0)
    labelled = dict.fromkeys(KINDS, 0)
    placed = dict.fromkeys(KINDS, 0)
    false_pos = dict.fromkeys(KINDS, 0)
    misses: list[dict[str, str]] = []
    lines = 0
    for raw in corpus.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        lines += 1
        entry = json.loads(raw)
        redacted, _ = pii.redact(entry["text"], allow_handles=BRAND_HANDLES)
        per_kind = dict.fromkeys(KINDS, 0)
        for item in entry["pii"]:
            kind = item["kind"]
            labelled[kind] += 1
            per_kind[kind] += 1
            if item["value"] in redacted:
                misses.append({"kind": kind, "value": item["value"]})
            else:
                found[kind] += 1
        for kind, token in TOKENS.items():
            tokens = redacted.count(token) - entry["text"].count(token)
            placed[kind] += tokens
            false_pos[kind] += max(0, tokens - per_kind[kind])
    kinds: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        recall = found[kind] / labelled[kind] if labelled[kind] else None
        true_pos = placed[kind] - false_pos[kind]
        precision = true_pos / placed[kind] if placed[kind] else None
        kinds[kind] = {
            "labelled": labelled[kind],
            "redacted": found[kind],
            "recall": recall,
            "placeholders": placed[kind],
            "false_positives": false_pos[kind],
            "precision": precision,
        }
    return {
        "corpus": str(corpus.relative_to(REPO)),
        "lines": lines,
        "kinds": kinds,
        "misses": misses,
    }


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{value * 100:5.1f}%"


def main() -> int:
    """Print the table and write ``bench/results/pii.json``."""
    report = evaluate()
    print(f"PII redaction on {report['corpus']} ({report['lines']} lines)")
    print(f"{'kind':<8} {'items':>5} {'recall':>7} {'precision':>9}")
    for kind, row in report["kinds"].items():
        print(
            f"{kind:<8} {row['labelled']:>5} {_pct(row['recall']):>7} {_pct(row['precision']):>9}"
        )
    for miss in report["misses"]:
        print(f"  missed {miss['kind']}: {miss['value']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
