"""The plan layer of git worktree isolation (§3, §3.1, §4, §11): task fields, defaults.worktree,
config `worktrees`, and the graph checks that refuse what could not merge in order."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from parallel_executor.errors import UserError
from parallel_executor.plan.config import Config, load_config
from parallel_executor.plan.graph import epic_problems
from parallel_executor.plan.model import TaskFile, WorktreePrep
from parallel_executor.plan.taskfile import load_task_file

from tests.conftest import engine

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def state(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG state dir, where worktrees go by default."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def wt(tid: str, epic: str | None = None, blocked_by: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    """A command task isolated in a worktree (of `epic` when given)."""
    return {"id": tid, "command": ["true"], "isolation": "worktree", **({"epic": epic} if epic else {}),
            **({"blockedBy": list(blocked_by)} if blocked_by else {}), **fields}


def load(tasks_file: Callable[..., Path], doc: Any, config: Config | None = None) -> TaskFile:
    path = tasks_file(doc)
    return load_task_file(path, config or load_config(), path.parent)


def problems(tasks_file: Callable[..., Path], doc: Any, config: Config | None = None) -> list[str]:
    with pytest.raises(UserError) as caught:
        load(tasks_file, doc, config)
    return [line.split(": ", 1)[1] for line in caught.value.lines]


def config_file(tmp_path: Path, worktrees: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"worktrees": worktrees}))
    return path


# --- fields ---------------------------------------------------------------------------------------------------

def test_fields_parse_and_default(state: Path, tasks_file: Callable[..., Path]) -> None:
    taskfile = load(tasks_file, {"tasks": [
        wt("a", "services", base="release/2.0", merge="squash"), wt("b", "services", ("a",), base="release/2.0",
                                                                     merge="squash"),
        {"id": "plain", "command": "true"}]})
    a, b, plain = taskfile.tasks
    assert (a.isolation, a.epic, a.base, a.merge) == ("worktree", "services", "release/2.0", "squash")
    assert b.blocked_by == ("a",) and b.base == "release/2.0"
    assert (plain.isolation, plain.epic, plain.base, plain.merge) == ("none", None, None, None)
    assert taskfile.warnings == ()


def test_fields_come_from_the_files_defaults(state: Path, tasks_file: Callable[..., Path]) -> None:
    taskfile = load(tasks_file, {"defaults": {"isolation": "worktree", "epic": "e", "base": "main", "merge": "none"},
                                 "tasks": [{"id": "a", "command": "true"}, {"id": "b", "command": "true",
                                                                            "merge": "none", "blockedBy": ["a"]}]})
    assert [(t.isolation, t.epic, t.base, t.merge) for t in taskfile.tasks] == [("worktree", "e", "main", "none")] * 2


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("merge", "rebase", "field 'merge': 'rebase' is not one of 'merge', 'squash', 'none'"),
    ("base", "", "field 'base': '' is empty"),
    ("epic", "has space", "field 'epic': 'has space' does not match"),
])
def test_bad_field_values(state: Path, tasks_file: Callable[..., Path], field: str, value: str, expected: str) -> None:
    [line] = problems(tasks_file, {"tasks": [wt("a", **{field: value})]})
    assert line.startswith(f"task 'a', {expected}")


def test_epic_base_merge_without_worktree_warn(state: Path, tasks_file: Callable[..., Path]) -> None:
    taskfile = load(tasks_file, {"tasks": [{"id": "a", "command": "true", "epic": "e"},
                                           {"id": "b", "command": "true", "epic": "e", "base": "main"}]})
    assert taskfile.warnings == (
        "tasks 'a', 'b', field 'epic': has no effect without \"isolation\": \"worktree\" (2 tasks)",
        "task 'b', field 'base': has no effect without \"isolation\": \"worktree\"")


# --- defaults.worktree and config worktrees -------------------------------------------------------------------------

def test_worktree_prep_defaults_to_the_configs(state: Path, tmp_path: Path, tasks_file: Callable[..., Path]) -> None:
    config = load_config(config_file(tmp_path, {"setup": [["npm", "ci"], "make setup"], "copy": [".env"],
                                                "merge": "squash"}))
    assert config.worktree_prep == WorktreePrep(setup=(("npm", "ci"), "make setup"), copy=(".env",))
    assert config.worktree_merge == "squash"
    assert load(tasks_file, {"tasks": [wt("a")]}, config).worktree == config.worktree_prep


def test_files_worktree_replaces_the_configs_per_key(state: Path, tmp_path: Path,
                                                     tasks_file: Callable[..., Path]) -> None:
    config = load_config(config_file(tmp_path, {"setup": [["npm", "ci"]], "copy": [".env"]}))
    doc = {"defaults": {"worktree": {"copy": ["config/*.local", ".env"]}}, "tasks": [wt("a")]}
    assert load(tasks_file, doc, config).worktree == WorktreePrep(setup=(("npm", "ci"),),
                                                                  copy=("config/*.local", ".env"))
    doc = {"defaults": {"worktree": {"setup": ["make"]}}, "tasks": [wt("a")]}
    assert load(tasks_file, doc, config).worktree == WorktreePrep(setup=("make",), copy=(".env",))


def test_config_defaults(state: Path) -> None:
    config = load_config()
    assert config.worktrees_root == state / "parallel-executor" / "worktrees"
    assert (config.worktree_prep, config.worktree_merge) == (WorktreePrep(), "merge")


def test_root_expands_home(state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert load_config(config_file(tmp_path, {"root": "~/trees"})).worktrees_root == tmp_path / "me" / "trees"


@pytest.mark.parametrize("root", ["~/.claude/worktrees", "/srv/x/.claude", "/srv/a/../.claude/b"])
def test_root_under_dot_claude_is_refused(state: Path, tmp_path: Path, root: str) -> None:
    with pytest.raises(UserError) as caught:
        load_config(config_file(tmp_path, {"root": root}))
    [line] = caught.value.lines
    assert "key 'worktrees.root'" in line and "folder named '.claude'" in line and "Claude Code refuses" in line


def test_root_through_a_link_into_dot_claude_is_refused(state: Path, tmp_path: Path) -> None:
    (tmp_path / ".claude" / "trees").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / ".claude" / "trees")
    with pytest.raises(UserError, match=r"folder named '\.claude'"):
        load_config(config_file(tmp_path, {"root": str(tmp_path / "link")}))


def test_default_root_under_dot_claude_is_refused(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / ".claude" / "state"))
    with pytest.raises(UserError, match=r"key 'worktrees.root': null \(the default, .*folder named '.claude'"):
        load_config()


def test_similar_names_are_not_dot_claude(state: Path, tmp_path: Path) -> None:
    for root in ("/srv/.claude-trees", "/srv/claude", "/srv/.Claude"):
        assert load_config(config_file(tmp_path, {"root": root})).worktrees_root == Path(root)


def test_root_is_normalized_before_the_check(state: Path, tmp_path: Path) -> None:
    # the engine hands agents the normalized path: a '.claude' that '..' takes back out is no part of it
    assert load_config(config_file(tmp_path, {"root": "/srv/.claude/../trees/"})).worktrees_root == Path("/srv/trees")


def test_relative_root_is_refused(state: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"key 'worktrees\.root': 'trees' must be an absolute path or start with ~"):
        load_config(config_file(tmp_path, {"root": "trees"}))


@pytest.mark.parametrize("entry", ["../secrets", "/etc/passwd", "a/../../b"])
def test_copy_outside_the_repository_is_refused(state: Path, tmp_path: Path, tasks_file: Callable[..., Path],
                                               entry: str) -> None:
    [line] = problems(tasks_file, {"defaults": {"worktree": {"copy": [".env", entry]}}, "tasks": [wt("a")]})
    assert line.startswith(f"defaults, field 'worktree.copy.1': {entry!r} must be relative to the repository's root")
    with pytest.raises(UserError) as caught:
        load_config(config_file(tmp_path, {"copy": [entry]}))
    assert f"key 'worktrees.copy.0': {entry!r} must be relative" in caught.value.lines[0]


def test_copy_may_hold_dots_in_names(state: Path, tasks_file: Callable[..., Path]) -> None:
    doc = {"defaults": {"worktree": {"copy": ["..env", "a/b..c", "./x"]}}, "tasks": [wt("a")]}
    assert load(tasks_file, doc).worktree.copy == ("..env", "a/b..c", "./x")


# --- graph checks -----------------------------------------------------------------------------------------------

def test_leaving_an_epic_and_coming_back_is_refused(state: Path, tasks_file: Callable[..., Path]) -> None:
    doc = [wt("a", "services"), {"id": "check", "command": "true", "blockedBy": ["a"]},
           wt("b", "services", ("check",))]
    assert problems(tasks_file, doc) == [
        "epic 'services': a -> check -> b leaves the epic and comes back; it cannot merge in order"]


def test_coming_back_through_another_epics_merge_is_refused(state: Path, tasks_file: Callable[..., Path]) -> None:
    # c waits for E's merge (so for b); b waits for F's merge (so for c): neither epic could ever merge
    doc = [wt("a", "E"), wt("c", "F", ("a",)), wt("d", "F"), wt("b", "E", ("d",))]
    assert problems(tasks_file, doc) == [
        "epic 'E': a -> c .. d -> b leaves the epic and comes back; it cannot merge in order "
        "(c .. d in epic 'F': an epic merges only once all its tasks are done)"]


def test_a_longer_way_out_and_back_is_named_shortest(state: Path, tasks_file: Callable[..., Path]) -> None:
    doc = [wt("a", "E"), {"id": "x1", "command": "true", "blockedBy": ["a"]},
           {"id": "x2", "command": "true", "blockedBy": ["x1"]}, wt("y", blocked_by=("a",)),
           wt("b", "E", ("x2", "y"))]
    assert problems(tasks_file, doc) == [
        "epic 'E': a -> y -> b leaves the epic and comes back; it cannot merge in order"]


def test_legal_epic_graphs_are_accepted(state: Path, tasks_file: Callable[..., Path]) -> None:
    doc = [{"id": "prep", "command": "true"}, wt("a", "E", ("prep",)), wt("b", "E", ("a",)), wt("c", "E", ("a",)),
           {"id": "after", "command": "true", "blockedBy": ["b", "c"]}, wt("f", "F", ("after",)),
           wt("alone", blocked_by=("f",)), {"id": "report", "command": "true", "blockedBy": ["alone", "a"]}]
    assert len(load(tasks_file, doc).tasks) == 8


def test_an_epic_without_worktree_isolation_is_not_an_epic(state: Path, tasks_file: Callable[..., Path]) -> None:
    doc = [{"id": "a", "command": "true", "epic": "E"}, {"id": "x", "command": "true", "blockedBy": ["a"]},
           {"id": "b", "command": "true", "epic": "E", "blockedBy": ["x"]}]
    assert [t.id for t in load(tasks_file, doc).tasks] == ["a", "x", "b"]


def test_leave_and_return_stays_fast_on_10000_tasks() -> None:
    ids = [f"t{i}" for i in range(10_000)]
    deps = {t: [ids[j] for j in range(max(0, i - 10), i)] for i, t in enumerate(ids)}  # 100,000 edges
    started = time.perf_counter()
    assert epic_problems(deps, {t: f"e{i // 10}" for i, t in enumerate(ids)}) == []
    [line] = epic_problems(deps, {ids[0]: "E", ids[-1]: "E"})
    assert time.perf_counter() - started < 3
    assert line.startswith("epic 'E': t0 -> t9 -> t19 -> t29 -> t39 -> ... (992 more) -> t9969 -> t9979 -> t9989 "
                           "-> t9999 leaves the epic and comes back")


@pytest.mark.parametrize("key", ["base", "merge"])
def test_one_epic_with_different_base_or_merge_is_refused(state: Path, tasks_file: Callable[..., Path],
                                                          key: str) -> None:
    value = "main" if key == "base" else "squash"
    shown = "the current HEAD" if key == "base" else "'merge'"
    doc = [wt("a", "E"), wt("b", "E", ("a",)), wt("c", "E", **{key: value}), wt("d", "E", **{key: value})]
    assert problems(tasks_file, doc) == [
        f"epic 'E': tasks 'a' and 'c' have a different '{key}' ({shown} and {value!r}); "
        "the tasks of an epic share one branch"]


def test_merge_left_out_means_the_configs(state: Path, tmp_path: Path, tasks_file: Callable[..., Path]) -> None:
    config = load_config(config_file(tmp_path, {"merge": "squash"}))
    assert len(load(tasks_file, [wt("a", "E"), wt("b", "E", merge="squash")], config).tasks) == 2


# --- on the command line ----------------------------------------------------------------------------------------

def test_validate_prints_them(state: Path, tmp_path: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file({"defaults": {"worktree": {"copy": ["/etc/passwd"]}}, "tasks": [
        wt("a", "services"), {"id": "check", "command": "true", "blockedBy": ["a"]},
        wt("b", "services", ("check",), base="dev")]})
    done = engine("validate", path, env={"XDG_STATE_HOME": str(state)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert [line.split(": ", 2)[2] for line in done.stderr.splitlines()] == [
        "defaults, field 'worktree.copy.0': '/etc/passwd' must be relative to the repository's root, "
        "without a leading '/' or a '..' part",
        "epic 'services': tasks 'a' and 'b' have a different 'base' (the current HEAD and 'dev'); "
        "the tasks of an epic share one branch",
        "epic 'services': a -> check -> b leaves the epic and comes back; it cannot merge in order"]

    done = engine("validate", tasks_file([{"id": "a", "command": "true", "merge": "none"}]),
                  env={"XDG_STATE_HOME": str(state)})
    assert done.returncode == 0
    assert done.stderr == "warning: task 'a', field 'merge': has no effect without \"isolation\": \"worktree\"\n"

    done = engine("validate", "--config", config_file(tmp_path, {"root": "~/.claude/trees"}), path,
                  env={"XDG_STATE_HOME": str(state)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "key 'worktrees.root': '~/.claude/trees' is inside a folder named '.claude'" in done.stderr
