"""``listenwell rules check|test|backtest``: validate, unit-test and backtest alert rules.

All three run the same pure engine as the worker (``streams.engine.Engine``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.settings import Settings

__all__ = ["register"]


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate rule files, the lexicon and rule test files; print ``file:line: reason``."""
    from streams.rules import (
        RuleFileError,
        lexicon_path,
        load_lexicon,
        load_rules,
        rule_files,
    )
    from streams.ruletests import load_test_file, test_files

    path = Path(args.path)
    if not path.exists():
        print(f"{path}:1: no such file or folder")
        return 1
    failed = False
    for file in rule_files(path):
        try:
            ruleset = load_rules(file)
        except RuleFileError as exc:
            print(exc)
            failed = True
        else:
            print(f"{file}: ok ({len(ruleset.rules)} rules)")
    if path.is_dir():
        lexicon = lexicon_path(path)
        if lexicon.exists():
            try:
                brands = load_lexicon(lexicon)
            except RuleFileError as exc:
                print(exc)
                failed = True
            else:
                phrases = sum(len(p) for p in brands.values())
                print(f"{lexicon}: ok ({phrases} phrases for {len(brands)} brands)")
        for file in test_files(path):
            try:
                loaded = load_test_file(file)
            except RuleFileError as exc:
                print(exc)
                failed = True
            else:
                print(f"{file}: ok ({len(loaded.spec.tests)} tests)")
    return 1 if failed else 0


def cmd_test(args: argparse.Namespace, settings: Settings) -> int:
    """Run rule test files; print pass/fail per case with a diff of the alerts."""
    from streams.rules import RuleFileError
    from streams.ruletests import load_test_file, run_test_file, test_files

    path = Path(args.path)
    files = test_files(path)
    if not files:
        print(f"{path}: no *.test.yaml files")
        return 1
    failures = passes = 0
    for file in files:
        try:
            loaded = load_test_file(file)
        except RuleFileError as exc:
            print(exc)
            failures += 1
            continue
        for result in run_test_file(loaded):
            if result.passed:
                passes += 1
                print(f"PASS {file}:{result.line}: {result.name}")
            else:
                failures += 1
                print(f"FAIL {file}:{result.line}: {result.name}")
                for line in result.diff:
                    print(f"    {line}")
    print(f"{passes} passed, {failures} failed")
    return 1 if failures else 0


def _duration(td: object) -> str:
    from datetime import timedelta

    assert isinstance(td, timedelta)
    minutes = int(td.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    """Run rules over past mentions; print the alerts and a summary per rule."""
    from connectors.replay import ReplayError, read_mentions
    from streams.brand_scoring import worker_scorer
    from streams.rules import RuleFileError, load_rule_paths
    from streams.ruletests import backtest, timeline

    rules_path = Path(args.rules)
    try:
        rules = load_rule_paths(rules_path)
        scorer = worker_scorer(rules_path)
    except RuleFileError as exc:
        print(exc)
        return 1
    try:
        read = read_mentions(args.input)
    except ReplayError as exc:
        print(f"listenwell rules backtest: {exc}")
        return 1
    for problem in read.problems[:10]:
        print(f"skipped: {problem}")
    result = backtest(rules, read.mentions, scorer)
    print(f"{len(read.mentions)} mentions from {args.input}", end="")
    if read.mentions:
        print(f", {result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC")
    else:
        print()
    shown = 0
    for alert in result.alerts:
        if not args.customers and "customer" in alert.labels:
            continue
        at = alert.ends_at if alert.ends_at is not None else alert.starts_at
        who = " ".join(f"{k}={alert.labels[k]}" for k in ("brand", "customer") if k in alert.labels)
        summary = alert.annotations.get("summary", "")
        print(f"{at:%Y-%m-%d %H:%M} {alert.state:<8} {alert.alertname} {who}  {summary}")
        shown += 1
    print()
    width = max((len(s.alertname) for s in result.summaries), default=5)
    print(f"{'rule':<{width}}  alerts  firing    timeline {result.start:%H:%M}…{result.end:%H:%M}")
    for s in result.summaries:
        bar = timeline(s.spans, result.start, result.end)
        print(f"{s.alertname:<{width}}  {s.alerts:>6}  {_duration(s.firing):>8}  {bar}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``listenwell rules check|test|backtest``."""
    rules = sub.add_parser("rules", help="alert rules: check, test, backtest")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)

    p = rules_sub.add_parser("check", help="validate rule files (a file or a folder)")
    p.add_argument("path")
    p.set_defaults(func=cmd_check)

    p = rules_sub.add_parser("test", help="run rule test files (*.test.yaml; a file or a folder)")
    p.add_argument("path")
    p.set_defaults(func=cmd_test)

    p = rules_sub.add_parser("backtest", help="the alerts rules would have sent on past mentions")
    p.add_argument("--rules", required=True, help="rule file or folder")
    p.add_argument("--input", required=True, help="JSONL or CSV mentions (as for replay)")
    p.add_argument(
        "--customers", action="store_true", help="also list customer alerts (summary always)"
    )
    p.set_defaults(func=cmd_backtest)
