#!/usr/bin/env python3
"""Counts what one schemathesis run of ci/contract.sh sent, and checks that it sent enough.

    python3 ci/contract_cases.py OPENAPI_JSON NDJSON_REPORT MIN_CASES

Prints, per operation of the run's NDJSON report (`st run --report ndjson`), the cases of each
phase and the statuses the service answered. Fails when an operation that takes input (a
parameter or a body) got fewer than MIN_CASES cases in the fuzzing phase, or when an operation
of the document that the run should have tested is missing from the report: schemathesis
counts a Hypothesis run that ends early without a failure as passed, so only the count shows
it. An operation without input has a single possible request, which Hypothesis sends once; one
that failed stopped at its first failure, which schemathesis reports itself.

Reads the report format of the schemathesis version that ci/contract.sh pins.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def operations(document: dict) -> dict[str, bool]:
    """Each operation's label ("POST /api/figalize/") and whether it takes any input."""
    found = {}
    for path, item in document.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method not in METHODS:
                continue
            takes_input = bool(shared or operation.get("parameters") or operation.get("requestBody"))
            found[f"{method.upper()} {path}"] = takes_input
    return found


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as file:
        document = json.load(file)
    minimum = int(sys.argv[3])
    cases: dict[str, Counter] = defaultdict(Counter)
    failed: set[str] = set()
    statuses: dict[str, Counter] = defaultdict(Counter)
    selected = None
    with open(sys.argv[2], encoding="utf-8") as file:
        for line in file:
            event = json.loads(line)
            if "LoadingFinished" in event:
                selected = event["LoadingFinished"]["statistic"]["operations"]["selected"]
            finished = event.get("ScenarioFinished")
            if finished is None:
                continue
            recorder = finished["recorder"]
            label = recorder["label"]
            cases[label][finished["phase"]] += len(recorder.get("cases", {}))
            if finished["status"] in ("failure", "error"):
                failed.add(label)
            for interaction in recorder.get("interactions", {}).values():
                response = interaction.get("response")
                statuses[label][response["status_code"] if response else "no answer"] += 1

    problems = []
    print(f"  {'operation':<40} {'examples':>8} {'coverage':>8} {'fuzzing':>8}  statuses")
    for label in sorted(cases):
        phases = cases[label]
        answered = ", ".join(f"{status}×{count}" for status, count in sorted(statuses[label].items(), key=str))
        print(
            f"  {label:<40} {phases['examples']:>8} {phases['coverage']:>8} {phases['fuzzing']:>8}  {answered}"
        )
        # An operation stops at its first failure, which schemathesis reports on its own.
        if label not in failed and operations(document).get(label) and phases["fuzzing"] < minimum:
            problems.append(f"{label}: {phases['fuzzing']} fuzzing cases, fewer than {minimum}")
    if selected is not None and len(cases) != selected:
        problems.append(f"{selected} operations selected, {len(cases)} in the report")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
