"""Every distinct failure of the fuzz generators at once, each shrunk to its smallest reproducer.

    .venv/bin/python -m tests.fuzzing.survey [EXAMPLES] [SEED] [GENERATOR ...]

A Hypothesis test stops at its first failure. This runs each generator (`task files`, `task
files run`, `configs`, `state files`) for EXAMPLES examples (default 2000) without stopping,
groups the failures by cause — a broken promise by its kind, an exception by its type and the
deepest line of the package it passed through — then replays the same search for each cause
alone, so that Hypothesis shrinks it, and prints the smallest example: the exception's last
line, where it was raised, and a reproducer (the files and the command).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.fuzzing.cases import KINDS, Kind
from tests.fuzzing.harness import Violation

PACKAGE = os.sep + "parallel_executor" + os.sep


def cause(error: BaseException) -> str:
    if isinstance(error, Violation):
        return str(error).split("]")[0].lstrip("[")
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if PACKAGE in f.filename]
    where = (ours or frames)[-1]
    return f"{type(error).__name__} via {_short(where.filename)}:{where.lineno} in {where.name}"


def raised_at(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{_short(last.filename)}:{last.lineno} in {last.name}: {(last.line or '').strip()}"


def _short(filename: str) -> str:
    return filename.split(PACKAGE)[-1] if PACKAGE in filename else filename.split("site-packages" + os.sep)[-1]


def _search(kind: Kind, examples: int, random_seed: int, on_failure: Callable[[Any, Exception], None],
            shrink: bool) -> None:
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]

    @seed(random_seed)
    @settings(max_examples=examples, phases=phases, database=None, deadline=None, report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(kind.strategy)
    def search(case: Any) -> None:
        try:
            kind.check(case)
        except Exception as e:
            on_failure(case, e)

    with contextlib.suppress(Exception):  # a shrinking search ends by raising its smallest failure, recorded
        search()


def _smallest(kind: Kind, examples: int, random_seed: int, key: str, first: Exception) -> Exception:
    """The same search again, failing on this cause alone, so that Hypothesis shrinks it."""
    smallest = [first]

    def keep(case: Any, error: Exception) -> None:
        if cause(error) == key:
            smallest[0] = error
            raise error

    _search(kind, examples, random_seed, keep, shrink=True)
    return smallest[0]


def survey(kind: Kind, examples: int, random_seed: int) -> None:
    found: dict[str, list[Any]] = {}

    def collect(case: Any, error: Exception) -> None:
        found.setdefault(cause(error), [0, error])[0] += 1

    started = time.monotonic()
    _search(kind, examples, random_seed, collect, shrink=False)
    print(f"\n##### {kind.name}: {examples} examples in {time.monotonic() - started:.0f}s, "
          f"{len(found)} distinct failures", flush=True)
    for key, (hits, first) in sorted(found.items(), key=lambda item: -item[1][0]):
        error = _smallest(kind, examples, random_seed, key, first)
        print(f"\n=== {kind.name} | {key} | {hits} of {examples} examples")
        print(f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:500]}")
        if not isinstance(error, Violation):
            print(f"raised at {raised_at(error)}")
            print("".join(getattr(error, "__notes__", [])).strip())
        else:
            print(str(error)[:4000])
        sys.stdout.flush()


def main(argv: list[str]) -> None:
    examples = int(argv[0]) if argv else 2000
    random_seed = int(argv[1]) if len(argv) > 1 else 0
    wanted = argv[2:] or [kind.name for kind in KINDS]
    for kind in KINDS:
        if kind.name in wanted:
            survey(kind, examples, random_seed)


if __name__ == "__main__":
    main(sys.argv[1:])
