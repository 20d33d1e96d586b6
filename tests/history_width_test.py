"""`history` fits the terminal (§5): long task-file paths keep their tail, then columns go; ids stay whole."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from parallel_executor.commands.history import tail

from tests.conftest import ENGINE, engine, py

pytestmark = pytest.mark.timeout(60)
DEEP = "a-rather-long-folder-name/of-some-project/with/its/tasks/kept/here"


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    """A Claude home holding three runs, made once for this file (`history` only reads it)."""
    root = tmp_path_factory.mktemp("history-width")
    env = {"CLAUDE_CONFIG_DIR": str(root / "claude")}
    for n, name in enumerate(["tasks.json", "the-nightly-build-and-deploy-tasks.json", "t.json"]):
        folder = root / DEEP / str(n)
        folder.mkdir(parents=True)
        path = folder / name
        path.write_text(json.dumps([{"id": "a", "command": py("pass")}]))
        assert engine("run", "-q", path, env=env).returncode == 0
    return root / "claude", json.loads(engine("history", "--json", env=env).stdout)


@pytest.fixture
def runs(three_runs: tuple[Path, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    home, made = three_runs
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home))
    return made


def table(out: str) -> list[dict[str, str]]:
    """tabulate's rows as {header: cell}, columns found by the dashes under the headers."""
    header, dashes, *rows = out.splitlines()
    spans, start = [], 0
    for dash in dashes.split("  "):
        if dash:
            spans.append((start, start + len(dash)))
        start += len(dash) + 2
    return [{header[a:b].strip(): row[a:b].strip() for a, b in spans} for row in rows]


@pytest.mark.parametrize("width", [40, 80, 100, 160])
def test_no_line_is_wider_than_the_terminal(runs: list[dict[str, str]], width: int) -> None:
    out = engine("history", env={"COLUMNS": str(width)}).stdout
    assert max(len(line) for line in out.splitlines()) <= width, out
    rows = table(out)
    assert [r["run"] for r in rows] == [r["run_id"] for r in runs]  # whole, in order
    assert {r["state"] for r in rows} == {"success"}
    for run, row in zip(runs, rows, strict=True):
        cell = row.get("file", "…")
        assert cell == run["task_file"] or (cell.startswith("…") and run["task_file"].endswith(cell[1:])), out
    assert ("file" in rows[0]) == (width >= 80)


def test_at_160_columns_the_file_is_cut_from_its_head(runs: list[dict[str, str]]) -> None:
    out = engine("history", env={"COLUMNS": "160"}).stdout
    assert out.splitlines()[0].split() == ["run", "state", "file", "started", "wall", "tasks", "failed", "speedup",
                                           "cost"]
    cells = [row["file"] for row in table(out)]
    assert all(c.startswith("…/") for c in cells) and cells[0].endswith("/2/t.json")


def test_at_80_columns_the_least_needed_columns_go_first(runs: list[dict[str, str]]) -> None:
    header = engine("history", env={"COLUMNS": "80"}).stdout.splitlines()[0].split()
    assert header[:3] == ["run", "state", "file"] and "started" not in header and "cost" not in header


def test_off_a_terminal_rows_are_whole(runs: list[dict[str, str]]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([*ENGINE, "history"], capture_output=True, text=True, env=env, timeout=30).stdout
    for run in runs:
        assert run["task_file"] in out


@pytest.mark.parametrize(("path", "limit", "expected"), [
    ("/home/me/proj/tasks.json", 24, "/home/me/proj/tasks.json"),
    ("/home/me/proj/tasks.json", 18, "…/proj/tasks.json"),
    ("/home/me/proj/tasks.json", 12, "…/tasks.json"),
    ("/home/me/proj/tasks.json", 8, "…ks.json"),
])
def test_tail(path: str, limit: int, expected: str) -> None:
    assert tail(path, limit) == expected and len(expected) <= limit
