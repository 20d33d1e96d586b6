"""The engine's own state files (PRODUCT §3, §8, §9, §10), in every way they can be found broken.

Valid specimens come from a real run of the engine (so they follow whatever shape this version
writes), with hand-written fallbacks; each scenario plants, per file, nothing, a valid
specimen, or something the engine cannot use: JSON of the wrong shape or with a wrong field
type, a torn write, random bytes, a torn last journal line, deep nesting, NaN, UTF-16, a
directory where the file belongs; or a file where a directory belongs, up to
CLAUDE_CONFIG_DIR itself. `lost` then finds every planted byte string that is gone: an unusable
state file may be moved aside as `<name>.corrupt-<timestamp>`, never silently replaced.

Every process id planted is one no process has (`SAFE_PID`): `cancel` signals the pid a status
names, and this test process runs as root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.fuzzing.harness import ROOT_MARK, Example, Planted, Sandbox, invoke
from tests.fuzzing.jsontext import HUGE_INT, Raw, deep_list, depths, render

SAFE_PID = 99_999_999  # above any pid_max (4,194,304 at most on Linux)
RUN_IDS = ["20240101-000000.000-abcd", "20240102-120000.500-0f0f", "20991231-235959.999-ffff"]
RUN_MARK = "@RUN@"
MEMORY = "claude/memory"
FILES = {
    "registry": f"{MEMORY}/temp/temp-skills-registry.json",
    "stats": f"{MEMORY}/logs/parallel-execution-stats.json",
    "locks": f"{MEMORY}/temp/resource-locks.json",
    "durations": f"{MEMORY}/logs/task-durations.json",
}
RUN_FILES = {
    "status": f"{MEMORY}/temp/runs/{{run}}/status.json",
    "events": f"{MEMORY}/temp/runs/{{run}}/events.jsonl",
    "marker": f"{MEMORY}/temp/runs/active/{{run}}",
}
BLOCKERS = ["claude", MEMORY, f"{MEMORY}/temp", f"{MEMORY}/logs", f"{MEMORY}/temp/runs", f"{MEMORY}/temp/runs/active",
            f"{MEMORY}/temp/runs/{{run}}", f"{MEMORY}/temp/parallel-results"]
RESULTS = f"{MEMORY}/temp/parallel-results"
SKILL = "fuzz-skill"
# Documents no version could have written as that file. An object is wrong only where the file's
# own shape is known for sure; the rest comes from changing a field of a real specimen.
WRONG_SHAPES: list[Any] = [[], "x", 1, None, True, 1.5, [1, 2], [{}], "", {}]
WRONG_OBJECTS: dict[str, list[Any]] = {
    "status": [{"pid": -1}, {"tasks": "x"}, {"state": None}, {"run_id": 5, "tasks": []}],
    "locks": [{"locks": "x"}, {"locks": [1]}, {"locks": [{"pid": "x"}]}],
    "stats": [{"counts": []}, {"counts": {"total_parallel_executions": "x"}}],
    "durations": [{"id:t": "x"}, {"id:t": [None]}, {"id:t": {}}, {"id:t": [[]]}],
    "registry": [{"temporary_skills": {}}, {"temporary_skills": [1]}, {"temporary_agents": "x"}, {"skill": []},
                 {"temporary_skills": [], "skill": {}}],
}
WRONG_FIELD_VALUES: list[Any] = [None, True, "x", "", -1, 1.5, [], {}, ["x"], {"a": 1}, Raw("NaN"), HUGE_INT,
                                 "2024-13-45T99:99:99", "\ud800", 10**30]


def small_task_file(skill: bool, paths: bool) -> bytes:
    task: dict[str, Any] = {"id": "t", "command": ["true"], "retries": 0, "type": "testing"}
    if skill:
        task.update(required_skill=SKILL, skill_description="made by the fuzz test")
    if paths:
        task["paths"] = ["out"]
    return json.dumps({"tasks": [task]}).encode()


def holds_pids(key: object) -> bool:
    """Is a field of this name a process id (or a map of them, as a registry's in_use_by)?"""
    return isinstance(key, str) and (key.lower().endswith("pid") or key.lower().endswith("pids") or key == "in_use_by")


def defuse(doc: Any, under_pid: bool = False) -> Any:
    """The document with every process id made one no process has."""
    if isinstance(doc, dict):
        return {k: defuse(v, under_pid or holds_pids(k)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [defuse(v, under_pid) for v in doc]
    if under_pid:
        if isinstance(doc, bool):
            return "x"
        if isinstance(doc, (int, float)) and abs(doc) < 10**8:
            return SAFE_PID
        if isinstance(doc, str) and re.fullmatch(r"\s*[-+]?[0-9._eE]+\s*", doc):
            return "x"
    if isinstance(doc, int) and not isinstance(doc, bool) and doc == os.getpid():
        return SAFE_PID
    return doc


def _generalize(data: bytes, root: Path, run_id: str) -> bytes:
    return data.replace(str(root).encode(), ROOT_MARK.encode()).replace(run_id.encode(), RUN_MARK.encode())


def _json_specimen(data: bytes) -> bytes:
    return (render(defuse(json.loads(data))) + "\n").encode()


@cache
def specimens() -> dict[str, bytes]:
    """What this version of the engine writes, from one real run (or, if that fails, hand-written)."""
    found = dict(FALLBACK)
    example = Example(files=[Planted("small.json", small_task_file(skill=True, paths=True), strict=False)],
                      argv=["run", "small.json", "-q"])
    with contextlib.suppress(Exception), Sandbox() as box:
        box.plant(example)
        invoke(example)
        run_dir = next((box.home / "memory/temp/runs").glob("*/status.json")).parent
        run_id = run_dir.name
        for label, rel in FILES.items():
            with contextlib.suppress(Exception):
                found[label] = _json_specimen(_generalize((box.root / rel).read_bytes(), box.root, run_id))
        with contextlib.suppress(Exception):
            found["status"] = _json_specimen(_generalize((run_dir / "status.json").read_bytes(), box.root, run_id))
        with contextlib.suppress(Exception):
            lines = _generalize((run_dir / "events.jsonl").read_bytes(), box.root, run_id).splitlines()
            found["events"] = b"".join(_json_specimen(line) for line in lines if line.strip())
    return found


_STAMP = "2024-01-01T00:00:00.000+00:00"
FALLBACK: dict[str, bytes] = {
    "registry": _json_specimen(json.dumps({"temporary_skills": [{
        "name": SKILL, "type": "skill", "path": f"{ROOT_MARK}/claude/skills/{SKILL}/SKILL.md", "created": _STAMP,
        "created_by": f"{RUN_MARK}/t", "usage_count": 1, "last_used": _STAMP, "status": "active", "keep_reason": None,
        "delete_reason": None, "user_marked_useful": False, "sha256": "0" * 64, "in_use_by": {}}],
        "temporary_agents": []}).encode()),
    "stats": _json_specimen(json.dumps({
        "total_parallel_executions": 1, "total_tasks_parallelized": 1, "average_speedup": 0.9,
        "total_time_saved_minutes": 0.0, "temp_skills_created": 1, "temp_skills_kept": 1, "temp_agents_created": 0,
        "temp_agents_kept": 0, "merge_success_rate": 1.0, "failure_rate": 0.0,
        "last_run": {"run_id": RUN_MARK, "tasks": 1, "failed": 0, "wall_time": 0.01, "task_time_sum": 0.009},
        "last_updated": _STAMP, "counts": {"total_parallel_executions": 1, "total_tasks_parallelized": 1,
                                           "tasks_failed": 0, "speedup_sum": 0.9, "time_saved_seconds": 0.0,
                                           "merges": 1, "merges_succeeded": 1}}).encode()),
    "locks": b'{"locks": []}\n',
    "durations": b'{"id:t": [0.005], "type:testing": [0.005]}\n',
    "status": _json_specimen(json.dumps({
        "run_id": RUN_MARK, "pid": SAFE_PID, "pid_started": 1.0, "task_file": f"{ROOT_MARK}/small.json",
        "results_dir": f"{ROOT_MARK}/{RESULTS}/{RUN_MARK}", "started": _STAMP, "ended": _STAMP, "state": "success",
        "slots": 5, "totals": {"wall_time": 0.01, "task_time_sum": 0.009, "speedup": 0.9, "cost_usd": 0.0},
        "tasks": [{"id": "t", "subject": "", "runner": None, "subagent": None, "status": "success", "attempts": 1,
                   "started": _STAMP, "ended": _STAMP, "paths": [], "reason": None}]}).encode()),
    "events": b"".join(_json_specimen(json.dumps(e).encode()) for e in [
        {"time": _STAMP, "event": "run-started", "pid": SAFE_PID, "tasks": 1, "slots": 5},
        {"time": _STAMP, "event": "started", "task": "t", "status": "running", "attempts": 1},
        {"time": _STAMP, "event": "finished", "task": "t", "status": "success", "attempts": 1},
        {"time": _STAMP, "event": "run-finished", "state": "success"}]),
}
DEAD_MARKER = f"{SAFE_PID} 1700000000.0".encode()


@dataclass
class Variant:
    content: bytes
    strict: bool
    directory: bool = False
    how: str = ""


def _rich(label: str, doc: Any) -> Any:
    """A valid document with more in it than a finished run leaves: a dead engine's lock, a running state."""
    if label == "locks" and isinstance(doc, dict) and isinstance(doc.get("locks"), list):
        doc["locks"].append({"agent_id": "t", "task": "t", "run_id": RUN_IDS[0], "pid": SAFE_PID, "pid_started": 1.0,
                             "locked_paths": [f"{ROOT_MARK}/out"], "mode": "write", "lock_time": _STAMP})
    if label == "status" and isinstance(doc, dict):
        doc["state"] = "running"
    return doc


def _leaf_paths(doc: Any, depth: int = 0, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if depth < 3 and isinstance(doc, dict):
        for k, v in doc.items():
            paths += _leaf_paths(v, depth + 1, (*prefix, k))
    elif depth < 3 and isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            paths += _leaf_paths(v, depth + 1, (*prefix, i))
    return paths


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


@st.composite
def json_variant(draw: st.DrawFn, label: str, run_id: str) -> Variant:
    """One state file's content: valid (the engine may update it) or not (it must survive)."""
    specimen = specimens()[label].replace(RUN_MARK.encode(), run_id.encode())
    kind = draw(st.sampled_from(["valid", "valid", "wrong-shape", "wrong-field", "wrong-field", "truncated", "random",
                                 "deep", "number", "encoding", "directory"]))
    if kind == "valid":
        if draw(st.booleans()):
            return Variant((render(_rich(label, json.loads(specimen))) + "\n").encode(), False, how="valid, richer")
        return Variant(specimen, False, how="valid")
    if kind == "wrong-shape":
        doc = draw(st.sampled_from(WRONG_SHAPES + WRONG_OBJECTS[label]))
        empty = doc == {} and label != "status"  # an empty object may well read as "nothing yet"
        return Variant((render(defuse(doc)) + "\n").encode(), not empty, how=f"shape {doc!r}")
    if kind == "wrong-field":
        doc = json.loads(specimen)
        paths = _leaf_paths(doc)
        if paths:
            path = draw(st.sampled_from(paths))
            old, new = _get(doc, path), draw(st.sampled_from(WRONG_FIELD_VALUES))
            _set(doc, path, new)
            # A container or a number turned into something else is a wrong shape; a string that
            # became another string, or a field the engine ignores, may be read and updated.
            strict = ((isinstance(old, (dict, list)) and type(new) is not type(old)) or (
                isinstance(old, (int, float)) and not isinstance(old, bool) and not isinstance(new, (int, float)))) \
                and (label != "stats" or path[0] == "counts")  # the dashboard's other figures are derived
            return Variant((render(defuse(doc)) + "\n").encode(), strict, how=f"field {path!r}: {old!r} -> {new!r}")
    if kind == "truncated":
        cut = draw(st.integers(1, max(1, len(specimen) - 2)))
        return Variant(specimen[:cut], True, how=f"cut at byte {cut}")
    if kind == "random":
        return Variant(draw(st.binary(min_size=1, max_size=48)), True, how="random bytes")
    if kind == "deep":  # an array at the top, or in place of a container the engine reads
        deep = deep_list(draw(depths()))
        doc = json.loads(specimen)
        spots = [p for p in _leaf_paths(doc)
                 if isinstance(_get(doc, p), dict) and (label != "stats" or p[0] == "counts")]
        if not spots or draw(st.booleans()):
            return Variant(deep.text.encode(), True, how="deep array")
        where = draw(st.sampled_from(spots))
        _set(doc, where, deep)
        return Variant((render(defuse(doc)) + "\n").encode(), True, how=f"deep array at {where!r}")
    if kind == "number":
        value = draw(st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("1e999"), HUGE_INT]))
        doc = json.loads(specimen)
        numeric = [p for p in _leaf_paths(doc) if isinstance(_get(doc, p), (int, float))
                   and not isinstance(_get(doc, p), bool)]
        if numeric:
            _set(doc, draw(st.sampled_from(numeric)), value)
        else:
            doc = {"counts": value} if isinstance(doc, dict) else [value]
        return Variant((render(defuse(doc)) + "\n").encode(), True, how=f"number {value.text[:12]}")
    if kind == "encoding":
        how = draw(st.sampled_from(["utf-16", "utf-32", "\\xff inside"]))
        data = specimen.decode().encode(how) if how != "\\xff inside" else specimen.replace(b'"', b'"\xff', 1)
        return Variant(data, True, how=how)
    return Variant(draw(st.binary(min_size=1, max_size=32)), True, directory=True, how="a directory")


@st.composite
def events_variant(draw: st.DrawFn, run_id: str) -> Variant:
    """A journal: intact, with a torn last line (ending inside a UTF-8 character), or with bad lines."""
    specimen = specimens()["events"].replace(RUN_MARK.encode(), run_id.encode())
    lines = specimen.splitlines(keepends=True)
    kind = draw(st.sampled_from(["valid", "torn-character", "torn-line", "bad-line", "random", "directory",
                                 "encoding"]))
    if kind == "valid":
        return Variant(specimen, True, how="valid")
    if kind == "torn-character":
        tail = '{"time": "x", "event": "finished", "task": "t", "status": "succ\u00e9\u20ac\U0001f600'.encode()
        return Variant(b"".join(lines) + tail[:draw(st.integers(len(tail) - 9, len(tail) - 1))], True,
                       how="torn last line, inside a character")
    if kind == "torn-line":
        last = lines[-1] if lines else b"{}\n"
        return Variant(b"".join(lines[:-1]) + last[:draw(st.integers(1, max(1, len(last) - 2)))], True,
                       how="torn last line")
    if kind == "bad-line":
        bad = draw(st.sampled_from([b"[]", b'"x"', b"1", b"null", b'{"task": 5, "status": []}', b'{"task": "t"}',
                                    b'{"task": "t", "status": "success", "seq": NaN}', b"\xff\xfe",
                                    b"[" * 1500 + b"]" * 1500, b'{"task": {"a": 1}, "status": "success"}',
                                    b'{"task": "t", "status": "success"}\x00']))
        at = draw(st.integers(0, len(lines)))
        return Variant(b"".join([*lines[:at], bad + b"\n", *lines[at:]]), True, how=f"bad line {bad[:20]!r}")
    if kind == "random":
        return Variant(draw(st.binary(min_size=1, max_size=48)), True, how="random bytes")
    if kind == "encoding":
        return Variant(specimen.decode().encode("utf-16"), True, how="utf-16")
    return Variant(draw(st.binary(min_size=1, max_size=32)), True, directory=True, how="a directory")


@st.composite
def marker_variant(draw: st.DrawFn) -> Variant:
    """The live-run marker "PID STARTTIME": a dead engine's (it may be removed), or garbage (it must survive)."""
    kind = draw(st.sampled_from(["dead", "dead", "garbage", "random", "directory"]))
    if kind == "dead":
        return Variant(DEAD_MARKER, False, how="a dead engine's")
    if kind == "garbage":
        data = draw(st.sampled_from([b"x", b"x y z", str(SAFE_PID).encode(), f"{SAFE_PID} nan".encode(),
                                     f"{SAFE_PID} 1e999".encode(), b"-1 0", b"\xff\xfe", DEAD_MARKER * 2,
                                     DEAD_MARKER + b"\n" + DEAD_MARKER, f"{SAFE_PID} {'9' * 5000}".encode(),
                                     f"{SAFE_PID}.5 1.0".encode()]))
        return Variant(data, True, how=f"garbage {data[:20]!r}")
    data = draw(st.binary(min_size=1, max_size=32))
    if re.match(rb"\s*[-+]?[0-9]", data):
        data = b"x" + data  # never a pid: some process might have it
    return Variant(data, True, directory=kind == "directory", how=kind)


class StateScenario:
    """Planted files and a command; `command` names its kind, `resumed` the run `run --resume` names."""

    def __init__(self, example: Example, command: str, resumed: str | None) -> None:
        self.example, self.command, self.resumed = example, command, resumed

    def __repr__(self) -> str:
        return repr(self.example)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # what Hypothesis prints
        printer.text(repr(self))


COMMANDS = {"run": 30, "resume": 15, "status": 7, "status-run": 8, "history": 8, "cancel": 8, "registry": 8,
            "cleanup": 8, "analyze": 8}  # percent of the scenarios


@st.composite
def state_scenarios(draw: st.DrawFn) -> StateScenario:
    command = draw(st.sampled_from([name for name, share in COMMANDS.items() for _ in range(share)]))
    runs = draw(st.lists(st.sampled_from(RUN_IDS), min_size=1, max_size=2, unique=True))
    files: list[Planted] = []
    notes: list[str] = []
    for label, rel in FILES.items():
        if draw(st.integers(0, 2)):
            files.append(_planted(rel, label, draw(json_variant(label, runs[0]))))
    has_status = set()
    for run in runs:
        if draw(st.integers(0, 3)):
            files.append(_planted(RUN_FILES["status"].format(run=run), "status", draw(json_variant("status", run))))
            has_status.add(run)
        if draw(st.booleans()):
            files.append(_planted(RUN_FILES["events"].format(run=run), "events", draw(events_variant(run))))
        if draw(st.booleans()):
            files.append(_planted(RUN_FILES["marker"].format(run=run), "marker", draw(marker_variant())))
    home_exists = True
    if draw(st.integers(0, 4)) == 0:
        blocker = draw(st.sampled_from(BLOCKERS)).format(run=runs[0])
        files = [f for f in files if not f.path.startswith(blocker + "/")]
        content = draw(st.sampled_from([b"not a directory\n", b"{}", b"\x00\xff"]))
        files.append(Planted(blocker, content, label="file where a directory belongs"))
        home_exists = blocker != "claude"
        notes.append(f"{blocker} is a file")
    if command == "resume" and not has_status:
        command = "run"
    resumed = None
    skill, paths = draw(st.booleans()), draw(st.booleans())
    files.append(Planted("small.json", small_task_file(skill, paths), label="task file"))
    argv = {"status": ["status"], "history": ["history", "--json"], "cancel": ["cancel"],
            "registry": ["registry", "list", "--json"], "cleanup": ["cleanup", "--dry-run", "--json"],
            "analyze": ["analyze", "small.json", "--format", "json"], "run": ["run", "small.json", "-q"]}.get(command)
    if command == "status-run":
        argv = ["status", draw(st.sampled_from([*runs, "../runs/" + runs[0], "x", "."])), "--json"]
    if command == "resume":
        resumed = draw(st.sampled_from(sorted(has_status)))
        argv = ["run", "small.json", "-q", "--resume", resumed]
        for f in files:
            if f.label == "events" and f"/{resumed}/" in f.path:
                f.append_ok = True  # the resumed run's journal grows
    for f in files:
        notes.append(f"{f.path}: {f.label}")
    assert argv is not None
    return StateScenario(Example(files, argv, home_exists, notes), command, resumed)


def _planted(path: str, label: str, variant: Variant) -> Planted:
    return Planted(path, variant.content, directory=variant.directory, strict=variant.strict,
                   label=f"{label} ({variant.how})")


# ---- after the command ---------------------------------------------------------------------------

CORRUPT = re.compile(r"\.corrupt-.*$")


def survivors(root: Path) -> dict[str, list[Path]]:
    """Every file under root, by its path with any `.corrupt-...` suffix taken off each part."""
    found: dict[str, list[Path]] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            key = "/".join(CORRUPT.sub("", part) for part in path.relative_to(root).parts)
            found.setdefault(key, []).append(path)
    return found


def lost(root: Path, planted: list[Planted]) -> list[Planted]:
    """What was planted as unusable and is found nowhere: not in place, not moved aside."""
    index = survivors(root)
    missing = []
    for item in planted:
        if not item.strict or not item.content:
            continue
        data = item.content.replace(ROOT_MARK.encode(), str(root).encode())
        key = f"{item.path}/{item.inner}" if item.directory else item.path
        if not any(_holds(path, data, item.append_ok) for path in index.get(key, [])):
            missing.append(item)
    return missing


def _holds(path: Path, data: bytes, append_ok: bool) -> bool:
    try:
        now = path.read_bytes()
    except OSError:
        return False
    return now == data or (append_ok and now.startswith(data))


def set_aside(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if CORRUPT.search(p.name)}


def task_results(root: Path) -> list[Path]:
    """Result files of task t written anywhere in the sandbox (none is planted)."""
    return [p for p in root.rglob("t.json") if p.is_file()]


def stats_after(root: Path) -> Any:
    try:
        return json.loads((root / FILES["stats"]).read_text())
    except (OSError, ValueError):
        return None
