"""Merging results by task type (§9): one strategy per type from config `merge_strategies`.

A strategy reads each task's result document (status, output, structured `data`, artifacts).
A strategy that fails keeps the individual results and says why.
"""

from __future__ import annotations

import glob
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from parallel_executor.results.testcounts import ALWAYS, KINDS, failing_tests, test_counts
from parallel_executor.system.jsonfile import read_json

__all__ = ["STRATEGIES", "failing_tests", "load_docs", "merge", "summary_line", "test_counts"]

Doc = dict[str, Any]


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


def aggregate_results(docs: Sequence[Doc], cwds: Mapping[str, str]) -> Doc:
    details: dict[str, dict[str, Any]] = {}
    totals = Counter[str]()
    uncounted = []
    for doc in docs:
        counts = test_counts(doc, cwds.get(doc["id"]))
        details[doc["id"]] = {"status": doc["status"], **(counts or {"counts": "not found"})}
        totals.update({k: v for k, v in (counts or {}).items() if isinstance(v, int)})
        if counts is None and doc["status"] != "success":
            uncounted.append(doc["id"])
    # pass_rate (§9): passed over passed, failed and errors. Skips (and xfailed/xpassed, counted apart) do
    # not lower it; errors (a fixture, a file that could not be collected) lower it as failures do, though
    # `failed` does not include them.
    good = totals["passed"]
    ran = good + totals["failed"] + totals["errors"]
    # A task that failed is never a pass, even with no counts to read; nor is a failing test in a task that exited 0.
    ok = _all_ok(docs) and totals["failed"] + totals["errors"] == 0
    return {"status": _status(ok), "total_tests": totals["total_tests"],
            **{k: totals[k] for k in KINDS if k in ALWAYS or totals[k]},
            "pass_rate": round(good / ran, 4) if ran else None, "details": details,
            "all_succeeded": _all_ok(docs), **({"without_counts": uncounted} if uncounted else {})}


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


def summary_line(name: str, merged_entry: Mapping[str, Any]) -> str | None:
    """One line for people about a merged type, e.g. `testing: 3,096 tests: 3,083 passed, 1 failed, 12 skipped`
    or `build: 3 of 3 succeeded`; None for the default merge, which says nothing the run's totals do not."""
    entry = merged_entry
    if entry.get("merge_error"):
        return f"{name}: merge failed ({entry['merge_error']}); the individual results are kept"
    tasks = [str(t) for t in entry.get("tasks") or []]
    errors = entry.get("errors")
    failed = len(errors) if isinstance(errors, Mapping) else 0
    done = f"{len(tasks) - failed:,} of {len(tasks):,} succeeded"
    strategy = entry.get("strategy")
    if strategy == "aggregate_results":
        return f"{name}: {_tests_summary(entry)}"
    extra = {
        "aggregate_status": lambda: _some(entry.get("total_files"), "file") + " created",
        "concatenate": lambda: _some(len(entry.get("files") or {}), "file") + " read",
        "deduplicate_rank": lambda: f"{_some(entry.get('unique'), 'unique result')} of {entry.get('total_found', 0):,}"
                                    " found",
        "check_all": lambda: _some(len(entry.get("artifacts") or []), "artifact") if entry.get("artifacts") else "",
        "verify_all": lambda: _some(len(entry.get("endpoints") or {}), "endpoint") if entry.get("endpoints") else "",
    }.get(str(strategy))
    if extra is None:
        return None
    if strategy == "verify_all":
        done = done.replace("succeeded", "deployed")
    detail = extra()
    return f"{name}: {done}" + (f", {detail}" if detail else "")


def _some(n: Any, noun: str) -> str:
    count = n if isinstance(n, int) else 0
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _tests_summary(entry: Mapping[str, Any]) -> str:
    details = entry.get("details")
    if not isinstance(details, Mapping):
        details = {}
    uncounted = [str(t) for t, d in details.items() if isinstance(d, Mapping) and d.get("counts") == "not found"]
    if len(uncounted) == len(details):
        ok = sum(1 for d in details.values() if isinstance(d, Mapping) and d.get("status") == "success")
        return f"{ok:,} of {len(details):,} succeeded; no test counts found"
    parts = [f"{entry.get('passed', 0):,} passed", f"{entry.get('failed', 0):,} failed"]
    for key, label in (("errors", "error"), ("skipped", "skipped"), ("xfailed", "xfailed"), ("xpassed", "xpassed")):
        n = entry.get(key)
        if isinstance(n, int) and n:
            parts.append(_some(n, label) if key == "errors" else f"{n:,} {label}")
    line = f"{_some(entry.get('total_tests'), 'test')}: " + ", ".join(parts)
    if uncounted:
        shown = ", ".join(uncounted[:3]) + (", ..." if len(uncounted) > 3 else "")
        line += f" (no counts from {shown})"
    return line


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
