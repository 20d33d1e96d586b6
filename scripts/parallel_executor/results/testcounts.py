"""Test counts and failing test ids of a test task's result document (§9 `aggregate_results`).

Where they come from, first found wins: the structured result (`data`), else the JUnit XML reports
the task names in `artifacts`, else a pytest, Maven or Gradle summary line of its output.
pytest's summary line, e.g. `1 failed, 1 passed, 1 skipped, 1 xfailed, 1 xpassed, 2 errors in 0.58s`,
and its short summary (`FAILED path::test - why`, `ERROR path::test`, `ERROR path` for a file that
could not be collected) are read; a collection error alone (`1 error in 0.67s`) is 1 error, not a pass.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from parallel_executor.system.timestamps import epoch

KINDS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")
ALWAYS = ("passed", "failed", "errors", "skipped")  # the seed's; xfailed and xpassed only when found
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PYTEST_LINE = re.compile(r"^=*\s*(\d+ \w+(?:, \d+ \w+)*) in \d+(?:\.\d+)? ?s")  # "in 0.5s", once "0.5 seconds"
_PYTEST_ITEM = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)\b")
_MAVEN = re.compile(r"Tests run:\s*(\d+),\s*Failures:\s*(\d+),\s*Errors:\s*(\d+),\s*Skipped:\s*(\d+)")
_GRADLE = re.compile(r"^(\d+) tests? completed, (\d+) failed(?:, (\d+) skipped)?", re.MULTILINE)
_FAILED = re.compile(r"^FAILED (\S.*?)(?: - .*)?$", re.MULTILINE)
_ERROR = re.compile(r"^ERROR (?!collecting )(\S.*?)(?: - .*)?$|ERROR collecting (\S+)", re.MULTILINE)
STALE_SLACK = 2.0  # seconds: a report older than the task's start (less this) is a previous run's


def counts(failing: list[str], total: int | None = None, **found: int) -> dict[str, Any]:
    """Per-task counts: total_tests = passed + failed + errors + skipped (+ xfailed, xpassed)."""
    shown = {k: found.get(k, 0) for k in KINDS if k in ALWAYS or found.get(k)}
    return {"total_tests": total if total is not None else sum(shown.values()), **shown, "failing_tests": failing}


def text_of(doc: Mapping[str, Any]) -> str:
    parts = (doc.get(key) for key in ("output", "stdout", "stderr"))
    return _ANSI.sub("", "\n".join(p for p in parts if isinstance(p, str)))


def failing_in_text(text: str) -> list[str]:
    """Test ids of the `FAILED id - why`, `ERROR id` and `ERROR collecting path` lines, each once, in order."""
    lines = sorted([*_FAILED.finditer(text), *_ERROR.finditer(text)], key=lambda m: m.start())
    ids = [next(g for g in m.groups() if g) for m in lines]
    found = [i for i in ids if "::" in i or "/" in i or "." in i]  # not a logged `ERROR something` line
    return list(dict.fromkeys(found))


def from_text(text: str) -> dict[str, Any] | None:
    maven = _MAVEN.findall(text)
    if maven:
        run, failures, errors, skipped = (int(x) for x in maven[-1])
        return counts(failing_in_text(text), run, passed=run - failures - errors - skipped, failed=failures,
                      errors=errors, skipped=skipped)
    gradle = _GRADLE.findall(text)
    if gradle:
        run, failures, skipped = (int(x or 0) for x in gradle[-1])
        return counts([], run, passed=run - failures - skipped, failed=failures, skipped=skipped)
    for line in reversed(text.splitlines()):
        summary = _PYTEST_LINE.match(line.strip())
        if summary:
            found = Counter[str]()
            for n, kind in _PYTEST_ITEM.findall(summary.group(1)):
                found["errors" if kind.startswith("error") else kind] += int(n)
            return counts(failing_in_text(text), **found)
    return None


def from_data(data: Mapping[str, Any]) -> dict[str, Any] | None:
    if not any(isinstance(data.get(k), int) for k in ("passed", "failed", "test_count", "tests")):
        return None
    found = {k: int(data[k]) for k in KINDS if isinstance(data.get(k), (int, float))}
    for kind, alias in (("errors", "error"), ("failed", "failures")):
        if kind not in found and isinstance(data.get(alias), int):
            found[kind] = data[alias]
    total = data.get("test_count", data.get("tests"))
    failing = data.get("failing_tests") or data.get("failures")
    return counts([str(t) for t in failing] if isinstance(failing, list) else [],
                  int(total) if isinstance(total, int) else None, **found)


def reports(doc: Mapping[str, Any], cwd: str | None) -> list[str]:
    """The task's artifacts that may be JUnit XML reports written by this run of it."""
    patterns = [p for p in doc.get("artifacts") or [] if isinstance(p, str)]
    files = sorted({f for p in patterns if cwd or os.path.isabs(p)
                    for f in glob.glob(os.path.join(cwd or "", p), recursive=True) if f.endswith(".xml")})
    started = None
    with contextlib.suppress(TypeError, ValueError):
        started = epoch(doc["start_time"]) - STALE_SLACK if doc.get("start_time") else None
    return [f for f in files if started is None or _mtime(f) >= started]


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def from_junit(files: Iterable[str], cwd: str | None) -> dict[str, Any] | None:
    """Counts from the test cases of JUnit XML reports (a pytest xfail is a skip of type pytest.xfail)."""
    found, failing, read = Counter[str](), [], False
    for report in files:
        try:
            root = ET.parse(report).getroot()
        except (OSError, ET.ParseError):
            continue
        if root.tag not in ("testsuite", "testsuites"):
            continue
        read = True
        cases = list(root.iter("testcase"))
        if not cases:  # a report with totals only
            for suite in [root] if root.tag == "testsuite" else root.findall("testsuite"):
                keys = ("tests", "failures", "errors", "skipped")
                tests, bad, errors, skipped = (int(suite.get(k) or 0) for k in keys)
                found.update(passed=tests - bad - errors - skipped, failed=bad, errors=errors, skipped=skipped)
        for case in cases:
            kind = _outcome(case)
            found[kind] += 1
            if kind in ("failed", "errors"):
                failing.append(_case_id(case, cwd))
    return counts(failing, **found) if read else None


def _outcome(case: ET.Element) -> str:
    if case.find("failure") is not None:
        return "failed"
    if case.find("error") is not None:
        return "errors"
    skipped = case.find("skipped")
    if skipped is not None:
        return "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
    return "passed"


def _case_id(case: ET.Element, cwd: str | None) -> str:
    """pytest's node id (`tests/test_a.py::TestX::test_b`) where the test file is found, else class::name."""
    classname, name = case.get("classname") or "", case.get("name") or ""
    parts = classname.split(".") if classname else [name]
    if case.get("file") and not classname:
        return f"{case.get('file')}::{name}"
    for cut in range(len(parts), 0, -1):
        path = "/".join(parts[:cut]) + ".py"
        if cwd and os.path.isfile(os.path.join(cwd, path)):
            rest = parts[cut:] + ([name] if classname else [])
            return "::".join([path, *rest])
    return "::".join(p for p in (classname, name) if p)


def test_counts(doc: Mapping[str, Any], cwd: str | None) -> dict[str, Any] | None:
    """Counts from the structured result, else JUnit XML artifacts, else a summary line of the output."""
    data = doc.get("data")
    found = from_data(data) if isinstance(data, Mapping) else None
    return found or from_junit(reports(doc, cwd), cwd) or from_text(text_of(doc))


def failing_tests(doc: Mapping[str, Any], limit: int = 5, *, cwd: str | None = None) -> list[str]:
    """The failing test ids of a task's result doc, at most limit of them, for the report of a failed test task.

    Relative `artifacts` are found under cwd (the task's; the doc's own `cwd` key if it has one).
    """
    where = cwd or (doc.get("cwd") if isinstance(doc.get("cwd"), str) else None)
    found = test_counts(doc, where)
    ids = found["failing_tests"] if found else []
    return list(ids or failing_in_text(text_of(doc)))[:limit]
