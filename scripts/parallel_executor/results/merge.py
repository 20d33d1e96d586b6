"""Merging results by task type (§9): one strategy per type from config `merge_strategies`.

A strategy reads each task's result document (status, output, structured `data`, artifacts).
A strategy that fails keeps the individual results and says why.
"""

from __future__ import annotations

import glob
import json
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from parallel_executor.system.jsonfile import read_json

Doc = dict[str, Any]
_PYTEST = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)\b")
_MAVEN = re.compile(r"Tests run:\s*(\d+),\s*Failures:\s*(\d+),\s*Errors:\s*(\d+),\s*Skipped:\s*(\d+)")


def _all_ok(docs: Sequence[Doc]) -> bool:
    return all(d["status"] == "success" for d in docs)


def _errors(docs: Sequence[Doc]) -> dict[str, str]:
    return {d["id"]: d.get("error") or d["status"] for d in docs if d["status"] != "success"}


def _status(ok: bool) -> str:
    return "success" if ok else "partial"


def aggregate_status(docs: Sequence[Doc]) -> Doc:
    files = sorted({f for d in docs for f in _data(d).get("files", []) if isinstance(f, str)})
    services = [str(_data(d).get("service_name") or d["id"]) for d in docs if d["status"] == "success"]
    return {"status": _status(_all_ok(docs)), "created_services": services, "created_files": files,
            "total_files": len(files), "errors": _errors(docs), "all_succeeded": _all_ok(docs)}


def _data(doc: Doc) -> dict[str, Any]:
    data = doc.get("data")
    return data if isinstance(data, dict) else {}


_KINDS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")
_FAILING_LINE = re.compile(r"^(?:FAILED|ERROR) (\S+::\S+)", re.MULTILINE)


def _counts(failing: list[str], total: int | None = None, **found: int) -> dict[str, Any]:
    """The seed's per-task counts: total_tests = passed + failed + errors + skipped (+ xfailed, xpassed)."""
    counts = {k: found.get(k, 0) for k in _KINDS if k in ("passed", "failed", "errors", "skipped") or found.get(k)}
    return {"total_tests": total if total is not None else sum(counts.values()), **counts, "failing_tests": failing}


def test_counts(doc: Doc, cwd: str) -> dict[str, Any] | None:
    """Counts from the structured result, else JUnit XML artifacts, else a summary line of the output."""
    data = _data(doc)
    if any(isinstance(data.get(k), int) for k in ("passed", "failed", "test_count", "tests")):
        found = {k: int(data[k]) for k in _KINDS if isinstance(data.get(k), (int, float))}
        if "errors" not in found and isinstance(data.get("error"), int):
            found["errors"] = data["error"]
        total = data.get("test_count", data.get("tests"))
        failing = data.get("failing_tests") or data.get("failures")
        return _counts([str(t) for t in failing] if isinstance(failing, list) else [],
                       int(total) if isinstance(total, int) else None, **found)
    reports = [f for pattern in doc.get("artifacts", []) for f in sorted(glob.glob(os.path.join(cwd, pattern),
                                                                                  recursive=True))]
    if reports:
        totals = Counter[str]()
        failing = []
        for report in reports:
            root = ET.parse(report).getroot()
            for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
                for key in ("tests", "failures", "errors", "skipped"):
                    totals[key] += int(suite.get(key, 0))
                for case in suite.iter("testcase"):
                    if case.find("failure") is not None or case.find("error") is not None:
                        failing.append("::".join(p for p in (case.get("classname"), case.get("name")) if p))
        return _counts(failing, totals["tests"], passed=totals["tests"] - totals["failures"] - totals["errors"]
                       - totals["skipped"], failed=totals["failures"], errors=totals["errors"],
                       skipped=totals["skipped"])
    text = f"{doc.get('output') or ''}\n{doc.get('stderr') or ''}"
    maven = _MAVEN.findall(text)
    if maven:
        run, failures, errors, skipped = (int(x) for x in maven[-1])
        return _counts([], run, passed=run - failures - errors - skipped, failed=failures, errors=errors,
                       skipped=skipped)
    for line in reversed(text.splitlines()):
        counts = {"errors" if kind.startswith("error") else kind: int(n) for n, kind in _PYTEST.findall(line)}
        if counts.keys() & {"passed", "failed", "errors"}:
            return _counts(_FAILING_LINE.findall(text), **counts)
    return None


def aggregate_results(docs: Sequence[Doc], cwds: Mapping[str, str]) -> Doc:
    details: dict[str, dict[str, Any]] = {}
    totals = Counter[str]()
    for doc in docs:
        counts = test_counts(doc, cwds[doc["id"]])
        details[doc["id"]] = {"status": doc["status"], **(counts or {"counts": "not found"})}
        totals.update({k: v for k, v in (counts or {}).items() if isinstance(v, int)})
    ran = totals["passed"] + totals["failed"] + totals["errors"]
    # A task that failed is never a pass, even with no counts to read; nor is a failing test in a task that exited 0.
    ok = _all_ok(docs) and totals["failed"] + totals["errors"] == 0
    return {"status": _status(ok), "total_tests": totals["total_tests"],
            **{k: totals[k] for k in _KINDS if k in ("passed", "failed", "errors", "skipped") or totals[k]},
            "pass_rate": round(totals["passed"] / ran, 4) if ran else None, "details": details,
            "all_succeeded": _all_ok(docs)}


def concatenate(docs: Sequence[Doc]) -> Doc:
    contents: dict[str, str] = {}
    for doc in docs:
        data = doc.get("data") or {}
        files = data.get("files") if isinstance(data, dict) else None
        if isinstance(files, dict):
            contents.update({str(k): str(v) for k, v in files.items()})
        elif isinstance(data, dict) and "file" in data:
            contents[str(data["file"])] = str(data.get("content", ""))
        else:
            contents[doc["id"]] = doc.get("output") or ""
    return {"files": contents, "errors": _errors(docs)}


def deduplicate_rank(docs: Sequence[Doc]) -> Doc:
    """Unique items, each itself (its own fields at the top level) plus how often it was found."""
    best: dict[str, tuple[float, Any]] = {}
    seen = Counter[str]()
    for doc in docs:
        data = _data(doc)
        for item in data.get("results") or data.get("items") or []:
            key = str(item.get("id") or item.get("path") or item.get("name") or json.dumps(item, sort_keys=True)) \
                if isinstance(item, dict) else str(item)
            seen[key] += 1
            score = float(item.get("score", 0)) if isinstance(item, dict) else 0.0
            if key not in best or score > best[key][0]:
                best[key] = (score, item)
    ranked = sorted(best, key=lambda k: (-best[k][0], -seen[k], k))
    results = [{**(best[k][1] if isinstance(best[k][1], dict) else {"item": best[k][1]}),
                "found": seen[k], "frequency": seen[k]} for k in ranked]
    total = sum(seen.values())
    return {"results": results, "total_found": total, "unique": len(best), "duplicates_removed": total - len(best),
            "errors": _errors(docs)}


def check_all(docs: Sequence[Doc], cwds: Mapping[str, str]) -> Doc:
    artifacts = sorted({f for d in docs for p in d.get("artifacts", [])
                        for f in glob.glob(os.path.join(cwds[d["id"]], p), recursive=True)})
    return {"all_succeeded": _all_ok(docs), "artifacts": artifacts, "errors": _errors(docs)}


def verify_all(docs: Sequence[Doc]) -> Doc:
    endpoints = {}
    for doc in docs:
        data = doc.get("data") or {}
        if isinstance(data, dict) and (data.get("endpoints") or data.get("endpoint")):
            endpoints[doc["id"]] = data.get("endpoints") or data.get("endpoint")
    return {"all_deployed": _all_ok(docs), "endpoints": endpoints, "errors": _errors(docs)}


def default(docs: Sequence[Doc]) -> Doc:
    return {"all_succeeded": _all_ok(docs), "statuses": dict(Counter(d["status"] for d in docs)),
            "errors": _errors(docs)}


STRATEGIES: dict[str, Callable[..., Doc]] = {
    "aggregate_status": aggregate_status, "aggregate_results": aggregate_results, "concatenate": concatenate,
    "deduplicate_rank": deduplicate_rank, "check_all": check_all, "verify_all": verify_all, "default": default,
}
_NEEDS_CWD = {"aggregate_results", "check_all"}


def merge(docs: Sequence[Doc], strategies: Mapping[str, str], cwds: Mapping[str, str]) -> dict[str, Doc]:
    """Merged results keyed by type ("default" for tasks without one)."""
    groups: dict[str, list[Doc]] = {}
    for doc in docs:
        groups.setdefault(doc.get("type") or "default", []).append(doc)
    merged = {}
    for kind, group in groups.items():
        name = strategies.get(kind, "default")
        head = {"strategy": name, "tasks": [d["id"] for d in group]}
        try:
            result = STRATEGIES[name](group, cwds) if name in _NEEDS_CWD else STRATEGIES[name](group)
        except Exception as e:  # a strategy's failure must never lose the individual results
            result = {"merge_error": f"{type(e).__name__}: {e}",
                      "results": {d["id"]: {"status": d["status"], "output": d.get("output")} for d in group}}
        merged[kind] = {**head, **result}
    return merged


def load_docs(results_dir: Path, ids: Sequence[str]) -> list[Doc]:
    docs = []
    for tid in ids:
        try:
            doc = read_json(results_dir / f"{tid}.json")
        except (OSError, ValueError):
            doc = None
        usable = isinstance(doc, dict) and doc.get("id") == tid and isinstance(doc.get("status"), str)
        docs.append(doc if usable else {"id": tid, "status": "missing", "error": "no usable result file"})
    return docs
