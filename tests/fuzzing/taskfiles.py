"""Task files (PRODUCT §4): mostly valid ones, pushed toward every edge the format has.

`task_files()` draws a valid file, then a few mutations (wrong types for every field of a task
and of `defaults`, missing and extra fields, odd and duplicate ids, cycles, unknown and
malformed `blockedBy`, nesting 50..2000 deep, 10**5000 and NaN written as text, NUL and lone
surrogates, odd env maps, bare lists and other shapes), then damage on the way to disk
(torn writes, UTF-16, non-UTF-8 bytes, an empty file...). `runnable_task_files()` draws files
that are safe to really run: command tasks only, each trivial and with no retries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.fuzzing.jsontext import NUMBERS_PYTHON_ACCEPTS, Raw, compact, damaged, deep_values, render

GOOD_IDS = ["a", "b", "c", "build", "test-1", "T_2", "x.y", "Z9", "s" * 128, "0", "a-b.c_d"]
ODD_IDS = ["", " ", "x\n", "merged", "a.json", "t.stdout", "t.stderr", "t.data", "MERGED", "x.JSON", "a" * 129,
           "a" * 200, "\u00fc", "\u65e5\u672c", "-a", ".a", "_a", "../x", "a/b", "a\\b", "\ud800", "a\x00", "\t",
           "a b", "con", "\u200b", "a\udfff"]
COMMANDS = [["true"], "true", "exit 0", ["sh", "-c", "exit 3"], ["/nonexistent/program"], ["false"],
            ["sh", "-c", "echo out; echo err >&2"], "echo {prompt} {{result:a}}"]
ODD_COMMANDS = ["", [], [""], [1], ["true", None], ["\x00"], ["tr\x00ue"], [" "], ["\ud800"], "\ud800", "exit \x00",
                [["true"]], {"argv": ["true"]}, ["true"] * 300]
PROMPTS = ["hi", "-starts-with-dash", "{prompt} {model} {subagent}", "{{result:a}} {{data:ghost}}", "\u00e9" * 50,
           "a\nb"]
STRINGS = ["", " ", "x", "\x00", "a\x00b", "\ud800", "\udfff\ud800", "\u00e9", "\U0001f600", "x" * 1000, "..",
           "/", "~", "$HOME", "%s", "{prompt}", "\r\n", "\x1b[31m"]
WRONG: list[Any] = [None, True, False, 0, -1, 1.5, 2.0, 10**20, -(10**20), 2**63, "", "x", " ", "\x00", "\ud800",
                    [], {}, [1], ["x"], [None], {"a": 1}, {"": ""}, [[]], "a" * 1000, *NUMBERS_PYTHON_ACCEPTS]
ENVS: list[Any] = [{"": "x"}, {"A=B": "x"}, {"A": 1}, {"A": None}, {"A": ["x"]}, {"A\x00": "x"}, {"A": "\x00"},
                   {"A": "\ud800"}, {"\ud800": "x"}, {"PE FUZZ": "x"}, {"=": ""}, [["A", "x"]], ["A=1"], "A=1", {},
                   {"PE_FUZZ_" + str(i): "x" for i in range(300)}, {"A": "x" * 100_000}]
EXTRA_FIELDS = ["blockedby", "depends_on", "Id", "ID", "", "\x00", "\ud800", "x" * 200, "timeout ", "tasks",
                "dependencies", "cmd", "$schema", "__proto__"]
PATHS: list[Any] = [["src"], ["src/a", "docs/**/*.md"], ["/"], ["."], [".."], ["out/"], ["*"], ["["], [""], ["\x00"]]

VALID: dict[str, st.SearchStrategy[Any]] = {
    "subject": st.sampled_from(["", "Build it", "\u00e9t\u00e9", "x" * 300]),
    "type": st.sampled_from(["testing", "build", "search", "file_read", "service_creation", "deployment", "misc",
                             "test", "pytest"]),
    "cwd": st.sampled_from([".", "sub", "/", "/nonexistent-dir", "..", "./", "sub/../"]),
    "env": st.dictionaries(st.sampled_from(["A", "B_2", "PE_FUZZ_X", "LC_ALL"]), st.sampled_from(["", "1", "\u00e9"]),
                           max_size=3),
    "timeout": st.sampled_from([0.001, 1, 5, 600, 1e-300, 1e308, 2**53, 3.5]),
    "retries": st.sampled_from([0, 1, 100]),
    "priority": st.sampled_from(["low", "normal", "high", "critical"]),
    "estimate": st.sampled_from([0, 0.5, 3, 1e300, 1e-300, 10**18]),
    "paths": st.sampled_from(PATHS[:7]),
    "reads": st.sampled_from(PATHS[:7]),
    "artifacts": st.sampled_from([["out/*.xml"], ["report.xml", "**/*.xml"], []]),
    "phase": st.sampled_from(["architecture", "test-definition", "implementation", "integration", "validation"]),
    "subagent": st.sampled_from(["general-purpose", "reviewer"]),
    "model": st.sampled_from(["sonnet", "opus"]),
    "runner": st.sampled_from(["claude", "codex", "gemini", "aider"]),
    "required_skill": st.sampled_from(["fuzz-skill", "a", "x" * 64, "0-0"]),
    "skill_description": st.sampled_from(["does things", "", 'quote " and \\ and\nnewline']),
    "skill_capabilities": st.sampled_from([["read"], [], ["a", "b"]]),
    "required_agent": st.sampled_from(["fuzz-agent", "b"]),
    "agent_description": st.sampled_from(["reviews", ""]),
    "agent_tools": st.sampled_from([["Read", "Grep"], []]),
    "isolation": st.sampled_from(["none", "worktree"]),
    "epic": st.sampled_from(["e1", "services"]),
}
TASK_FIELDS = [*VALID, "id", "prompt", "command", "blockedBy", "trigger", "permission_mode", "tools", "allowed_tools",
               "max_turns", "budget_usd", "base", "merge"]
DEFAULT_FIELDS = ["runner", "subagent", "model", "type", "phase", "cwd", "env", "timeout", "retries", "priority",
                  "isolation", "worktree"]
RUN_SAFE_FIELDS = ["subject", "type", "cwd", "env", "timeout", "priority", "estimate", "paths", "reads", "artifacts",
                   "phase", "required_skill", "skill_description", "skill_capabilities", "required_agent",
                   "agent_description", "agent_tools", "epic"]


@dataclass
class Draft:
    """A task file being built: tasks and defaults, and the shape it is written in."""

    tasks: list[Any]
    defaults: Any = None
    shape: str = "object"  # object | list | replaced
    top: Any = None  # the whole document, when a mutation replaced it
    applied: list[str] = field(default_factory=list)

    def document(self) -> Any:
        if self.shape == "replaced":
            return self.top
        if self.shape == "list":
            return self.tasks
        return {**({"defaults": self.defaults} if self.defaults is not None else {}), "tasks": self.tasks}


@st.composite
def _base(draw: st.DrawFn, runnable: bool) -> Draft:
    n = draw(st.integers(1, 6))
    ids = draw(st.lists(st.sampled_from(GOOD_IDS), min_size=n, max_size=n, unique=True))
    fields = RUN_SAFE_FIELDS if runnable else list(VALID)
    tasks = []
    for i, tid in enumerate(ids):
        task: dict[str, Any] = {"id": tid}
        if runnable or draw(st.integers(0, 3)):
            task["command"] = draw(st.sampled_from(COMMANDS[:7] if runnable else COMMANDS))
        else:
            task["prompt"] = draw(st.sampled_from(PROMPTS))
        if i and draw(st.booleans()):
            task["blockedBy"] = draw(st.lists(st.sampled_from(ids[:i]), unique=True, min_size=1, max_size=3))
        for name in draw(st.lists(st.sampled_from(fields), unique=True, max_size=4)):
            task[name] = draw(VALID[name])
        if runnable:
            task["retries"] = 0  # the shipped config retries failures after a 2 s backoff: keep runs quick
        tasks.append(task)
    draft = Draft(tasks, shape=draw(st.sampled_from(["object", "object", "list"])))
    if draft.shape == "object" and draw(st.booleans()):
        names = [f for f in DEFAULT_FIELDS if f in VALID and (not runnable or f in RUN_SAFE_FIELDS)]
        draft.defaults = {name: draw(VALID[name]) for name in draw(st.lists(st.sampled_from(names), unique=True,
                                                                                  max_size=3))}
    return draft


def _task(draw: st.DrawFn, draft: Draft) -> dict[str, Any]:
    candidates = [t for t in draft.tasks if isinstance(t, dict)]
    if not candidates:
        draft.tasks.append({"id": "a", "command": ["true"]})
        candidates = draft.tasks
    return draw(st.sampled_from(candidates))  # type: ignore[no-any-return]


def _holder(draw: st.DrawFn, draft: Draft) -> dict[str, Any]:
    """A task, or the defaults (created when missing)."""
    if draft.shape == "object" and draw(st.integers(0, 3)) == 0:
        if not isinstance(draft.defaults, dict):
            draft.defaults = {}
        return draft.defaults  # type: ignore[no-any-return]
    return _task(draw, draft)


def wrong_type(draw: st.DrawFn, draft: Draft) -> None:
    holder = _holder(draw, draft)
    names = DEFAULT_FIELDS if holder is draft.defaults else TASK_FIELDS
    holder[draw(st.sampled_from(names))] = draw(st.sampled_from(WRONG) | deep_values())


def drop_field(draw: st.DrawFn, draft: Draft) -> None:
    _task(draw, draft).pop(draw(st.sampled_from(["id", "command", "prompt", "blockedBy"])), None)


def both_or_neither(draw: st.DrawFn, draft: Draft) -> None:
    task = _task(draw, draft)
    if draw(st.booleans()):
        task.update(command=["true"], prompt="hi")
    else:
        task.pop("command", None)
        task.pop("prompt", None)


def extra_field(draw: st.DrawFn, draft: Draft) -> None:
    where = draw(st.sampled_from(["task", "defaults", "top"]))
    name, value = draw(st.sampled_from(EXTRA_FIELDS)), draw(st.sampled_from(["x", 1, None, ["a"]]))
    if where == "top" and draft.shape == "object":
        draft.shape, draft.top = "replaced", {**draft.document(), name: value}
    else:
        _holder(draw, draft)[name] = value


def odd_id(draw: st.DrawFn, draft: Draft) -> None:
    task = _task(draw, draft)
    old, new = task.get("id"), draw(st.sampled_from(ODD_IDS))
    task["id"] = new
    for other in draft.tasks:  # dependents follow the rename, so the id itself is what is tested
        if isinstance(other, dict) and isinstance(other.get("blockedBy"), list) and old in other["blockedBy"]:
            other["blockedBy"] = [new if d == old else d for d in other["blockedBy"]]


def duplicate_id(draw: st.DrawFn, draft: Draft) -> None:
    task = _task(draw, draft)
    if len(draft.tasks) < 2 or draw(st.booleans()):
        draft.tasks.append(dict(task))
    else:
        draw(st.sampled_from([t for t in draft.tasks if isinstance(t, dict)]))["id"] = task.get("id")


def cycle(draw: st.DrawFn, draft: Draft) -> None:
    members = [t for t in draft.tasks if isinstance(t, dict) and isinstance(t.get("id"), str)]
    ring = draw(st.lists(st.sampled_from(members), min_size=1, max_size=min(4, len(members)), unique_by=id)) \
        if members else []
    for i, task in enumerate(ring):
        blockers = task.get("blockedBy") if isinstance(task.get("blockedBy"), list) else []
        nxt = ring[(i + 1) % len(ring)]["id"]
        task["blockedBy"] = [*[b for b in blockers if b != nxt], nxt]


def unknown_dependency(draw: st.DrawFn, draft: Draft) -> None:
    task = _task(draw, draft)
    blockers = task.get("blockedBy") if isinstance(task.get("blockedBy"), list) else []
    task["blockedBy"] = [*blockers, draw(st.sampled_from(["ghost", "A", "a ", "b\n", "merged", "s" * 129]))]


def bad_blocked_by(draw: st.DrawFn, draft: Draft) -> None:
    _task(draw, draft)["blockedBy"] = draw(st.sampled_from(["a", [1], [None], [[]], {"a": 1}, ["a", "a"], [""], None,
                                                            ["\ud800"], [True]]) | deep_values())


def deep_nesting(draw: st.DrawFn, draft: Draft) -> None:
    deep = draw(deep_values())
    where = draw(st.sampled_from(["field", "item", "tasks", "defaults"]))
    if where == "field":
        _holder(draw, draft)[draw(st.sampled_from(TASK_FIELDS))] = deep
    elif where == "item":
        draft.tasks.append(deep)
    elif where == "tasks":
        draft.shape, draft.top = "replaced", {"tasks": deep}
    else:
        draft.shape, draft.defaults = "object", deep


def numbers(draw: st.DrawFn, draft: Draft) -> None:
    holder = _holder(draw, draft)
    holder[draw(st.sampled_from(["timeout", "retries", "estimate"]))] = draw(
        st.sampled_from([*NUMBERS_PYTHON_ACCEPTS, 1e308, -0.0, 5e-324, 2.0, 10**20, -1, 0]))


def run_safe_numbers(draw: st.DrawFn, draft: Draft) -> None:
    _holder(draw, draft)[draw(st.sampled_from(["timeout", "estimate"]))] = draw(
        st.sampled_from([Raw("Infinity"), Raw("1e999"), Raw("NaN"), HUGE_TIMEOUT, 1e308, 5e-324, 0.001, 2**63]))


HUGE_TIMEOUT = Raw("1" + "0" * 400)


def odd_strings(draw: st.DrawFn, draft: Draft) -> None:
    holder = _holder(draw, draft)
    name = draw(st.sampled_from(["id", "subject", "cwd", "type", "runner", "model", "subagent", "phase", "epic",
                                 "required_skill", "skill_description", "prompt", "command"]))
    value = draw(st.sampled_from(STRINGS))
    holder[name] = [value] if name == "command" and draw(st.booleans()) else value


def run_safe_strings(draw: st.DrawFn, draft: Draft) -> None:
    task = _task(draw, draft)
    name = draw(st.sampled_from(["subject", "cwd", "type", "command", "skill_description", "epic"]))
    value = draw(st.sampled_from(["\x00", "a\x00b", "\ud800", "\u00e9", "\U0001f600", "x" * 1000, "\x1b[31m", "\r"]))
    if name == "command":
        value = draw(st.sampled_from([["true", value], ["sh", "-c", "true", value], "true " + value]))
    task[name] = value


def env_maps(draw: st.DrawFn, draft: Draft) -> None:
    _holder(draw, draft)["env"] = draw(st.sampled_from(ENVS))


def odd_commands(draw: st.DrawFn, draft: Draft) -> None:
    task = _task(draw, draft)
    task.pop("prompt", None)
    task["command"] = draw(st.sampled_from(ODD_COMMANDS))


def shapes(draw: st.DrawFn, draft: Draft) -> None:
    kind = draw(st.sampled_from(["toggle", "defaults", "top"]))
    if kind == "toggle":
        draft.shape = "list" if draft.shape == "object" else "object"
    elif kind == "defaults":
        draft.shape, draft.defaults = "object", draw(st.sampled_from([[], "x", None, 1, [{"timeout": 1}]]))
    else:
        draft.shape = "replaced"
        draft.top = draw(st.sampled_from([None, 1, "x", [], {}, {"tasks": {}}, {"tasks": "x"}, {"tasks": None},
                                          {"defaults": {}}, {"tasks": [], "defaults": []}, [None], [1], [[]], ["x"],
                                          {"tasks": [{"id": "a", "command": ["true"]}], "version": 2}, True,
                                          {"tasks": {"a": {"command": ["true"]}}}]))


def many_tasks(draw: st.DrawFn, draft: Draft) -> None:
    """Now and then (the rest of the time nothing), hundreds to thousands of tasks: a chain, a fan or a dense DAG."""
    if draw(st.integers(0, 9)):
        return
    n, form = draw(st.integers(100, 3000)), draw(st.sampled_from(["chain", "fan", "dense"]))
    if form == "dense":
        n = min(n, 300)
    tasks: list[Any] = []
    for i in range(n):
        task: dict[str, Any] = {"id": f"t{i}", "command": ["true"]}
        blockers = {"chain": [f"t{i - 1}"] if i else [], "fan": ["t0"] if i else [],
                    "dense": [f"t{j}" for j in range(i)]}[form]
        if blockers:
            task["blockedBy"] = blockers
        tasks.append(task)
    draft.tasks = tasks


Mutation = Callable[[st.DrawFn, Draft], None]
MUTATIONS: list[Mutation] = [wrong_type, wrong_type, drop_field, both_or_neither, extra_field, odd_id, odd_id,
                             duplicate_id, cycle, unknown_dependency, bad_blocked_by, deep_nesting, numbers,
                             odd_strings, env_maps, odd_commands, shapes, many_tasks]
RUN_SAFE_MUTATIONS: list[Mutation] = [odd_id, duplicate_id, cycle, unknown_dependency, run_safe_numbers,
                                      run_safe_strings, env_maps, shapes]


class TaskFile:
    """The bytes of a task file, and how they were made (the mutations, then the damage)."""

    def __init__(self, data: bytes, how: str) -> None:
        self.data, self.how = data, how

    def __repr__(self) -> str:
        return f"TaskFile({compact(self.data)}, how={self.how!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # what Hypothesis prints
        printer.text(repr(self))


@st.composite
def task_files(draw: st.DrawFn, runnable: bool = False) -> TaskFile:
    draft = draw(_base(runnable))
    mutations = RUN_SAFE_MUTATIONS if runnable else MUTATIONS
    for _ in range(draw(st.integers(0, 1 if runnable else 4))):
        mutation = draw(st.sampled_from(mutations))
        mutation(draw, draft)
        draft.applied.append(mutation.__name__)
    text = render(draft.document(), indent=draw(st.sampled_from([None, 2])))
    data, how = draw(damaged(text, intact_share=90 if runnable else 70))
    return TaskFile(data, ", ".join([*draft.applied, how]))
