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
_PYTEST = re.compile(r"(\d+) (passed|failed|skipped|errors?)")
_MAVEN = re.compile(r"Tests run:\s*(\d+),\s*Failures:\s*(\d+),\s*Errors:\s*(\d+),\s*Skipped:\s*(\d+)")


def _all_ok(docs: Sequence[Doc]) -> bool:
    return all(d["status"] == "success" for d in docs)


def _errors(docs: Sequence[Doc]) -> dict[str, str]:
    return {d["id"]: d.get("error") or d["status"] for d in docs if d["status"] != "success"}


def aggregate_status(docs: Sequence[Doc]) -> Doc:
    files = sorted({f for d in docs for f in (d.get("data") or {}).get("files", [])})
    return {"all_succeeded": _all_ok(docs), "created": [d["id"] for d in docs if d["status"] == "success"],
            "files": files, "errors": _errors(docs)}


def test_counts(doc: Doc, cwd: str) -> dict[str, int] | None:
    """Counts from the structured result, else JUnit XML artifacts, else a summary line of the output."""
    data = doc.get("data") or {}
    if isinstance(data, dict) and "passed" in data:
        passed, failed, skipped = (int(data.get(k, 0)) for k in ("passed", "failed", "skipped"))
        return {"tests": int(data.get("tests", passed + failed + skipped)), "passed": passed, "failed": failed,
                "skipped": skipped}
    reports = [f for pattern in doc.get("artifacts", []) for f in sorted(glob.glob(os.path.join(cwd, pattern),
                                                                                  recursive=True))]
    if reports:
        totals = Counter[str]()
        for report in reports:
            root = ET.parse(report).getroot()
            for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
                for key in ("tests", "failures", "errors", "skipped"):
                    totals[key] += int(suite.get(key, 0))
        failed = totals["failures"] + totals["errors"]
        return {"tests": totals["tests"], "passed": totals["tests"] - failed - totals["skipped"], "failed": failed,
                "skipped": totals["skipped"]}
    text = f"{doc.get('output') or ''}\n{doc.get('stderr') or ''}"
    maven = _MAVEN.findall(text)
    if maven:
        run, failures, errors, skipped = (int(x) for x in maven[-1])
        return {"tests": run, "passed": run - failures - errors - skipped, "failed": failures + errors,
                "skipped": skipped}
    for line in reversed(text.splitlines()):
        counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in _PYTEST.findall(line)}
        if "passed" in counts or "failed" in counts:
            failed = counts.get("failed", 0) + counts.get("error", 0)
            passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
            return {"tests": passed + failed + skipped, "passed": passed, "failed": failed, "skipped": skipped}
    return None


def aggregate_results(docs: Sequence[Doc], cwds: Mapping[str, str]) -> Doc:
    details: dict[str, dict[str, Any]] = {}
    totals = Counter[str]()
    for doc in docs:
        counts = test_counts(doc, cwds[doc["id"]])
        details[doc["id"]] = {"status": doc["status"], **(counts or {"counts": "not found"})}
        totals.update(counts or {})
    tests = totals["tests"]
    return {"all_succeeded": _all_ok(docs), "tests": tests, "passed": totals["passed"], "failed": totals["failed"],
            "skipped": totals["skipped"], "pass_rate": round(totals["passed"] / tests, 4) if tests else None,
            "tasks": details}


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
    best: dict[str, Doc] = {}
    seen = Counter[str]()
    total = 0
    for doc in docs:
        data = doc.get("data") or {}
        for item in (data.get("results") or data.get("items") or []) if isinstance(data, dict) else []:
            key = str(item.get("id") or item.get("path") or item.get("name") or json.dumps(item, sort_keys=True)) \
                if isinstance(item, dict) else str(item)
            total += 1
            seen[key] += 1
            score = float(item.get("score", 0)) if isinstance(item, dict) else 0.0
            if key not in best or score > best[key]["score"]:
                best[key] = {"key": key, "score": score, "item": item}
    ranked = sorted(best.values(), key=lambda r: (-r["score"], -seen[r["key"]], r["key"]))
    return {"results": [{**r, "found": seen[r["key"]]} for r in ranked], "duplicates_removed": total - len(best),
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
