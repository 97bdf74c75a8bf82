"""``listenwell forget [--author ID] [--customer CID] [--brand B] [--dry-run]``: erase a person's
data from the state listenwell owns (at least one of ``--author`` and ``--customer``); what it
does, and does not reach, is in :mod:`services.erasure`."""

from __future__ import annotations

import argparse
import json
import sys

from streams.settings import Settings


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    """Write the tombstones and the erasure record; print what was done."""
    from kafka.errors import KafkaError
    from pydantic import ValidationError

    from services.erasure import ForgetRequest, forget

    try:
        request = ForgetRequest(
            author=args.author, customer=args.customer, brand=args.brand, dry_run=args.dry_run
        )
    except ValidationError as exc:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        print(f"listenwell forget: {reasons}", file=sys.stderr)
        return 2
    try:
        done = forget(request, bootstrap=settings.kafka_bootstrap, prefix=settings.topic_prefix)
    except KafkaError as exc:
        print(f"listenwell forget: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(done, indent=2, sort_keys=True))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``forget``."""
    p = sub.add_parser(
        "forget", help="erase a person's data from listenwell's own state (right to erasure)"
    )
    p.add_argument("--author", help="the person's author id, as in mentions")
    p.add_argument("--customer", help="their customer id: tombstone their customers.health entries")
    p.add_argument("--brand", help="only this brand's entries of the customer")
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    p.set_defaults(func=cmd_forget)
