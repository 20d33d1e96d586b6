"""The engine with real processes, files and signals (PRODUCT §6-§8)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.conftest import (
    ENGINE,
    engine,
    helper,
    processes_with_marker,
    py,
    run_json,
    running_status,
    start_engine,
    tasks_running,
    wait_for,
)


def intervals(out: Path) -> dict[str, tuple[float, float]]:
    result = {}
    for f in out.iterdir():
        start, end = f.read_text().split()
        result[f.name] = (float(start), float(end))
    return result


def max_overlap(spans: dict[str, tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in spans.values()] + [(e, -1) for _, e in spans.values()])
    level = peak = 0
    for _, delta in points:
        level += delta
        peak = max(peak, level)
    return peak


def test_parallelism_reaches_j_and_never_exceeds_it(home: Path, tasks_file: Callable[..., Path],
                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = tasks_file([{"id": f"t{i}", "command": helper("interval.py", str(out), f"t{i}", "0.4")}
                       for i in range(9)])
    code, summary = run_json(path, "-j", "3")
    assert code == 0 and summary["status"] == "success"
    spans = intervals(out)
    assert len(spans) == 9
    assert max_overlap(spans) == 3
    assert summary["wall_time"] < 0.4 * 9 / 3 + 1.5  # three rounds, not nine


def test_dependency_order_and_dynamic_start(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    # slow(1.2s) and quick(0.1s) start together; after-quick depends only on quick, so it must
    # start long before slow ends (no wave barrier); final waits for both branches.
    out = tmp_path / "out"
    out.mkdir()
    path = tasks_file([
        {"id": "slow", "command": helper("interval.py", str(out), "slow", "1.2")},
        {"id": "quick", "command": helper("interval.py", str(out), "quick", "0.1")},
        {"id": "after-quick", "command": helper("interval.py", str(out), "after-quick", "0.1"),
         "blockedBy": ["quick"]},
        {"id": "final", "command": helper("interval.py", str(out), "final", "0.1"),
         "blockedBy": ["slow", "after-quick"]},
    ])
    code, _ = run_json(path, "-j", "4")
    assert code == 0
    s = intervals(out)
    assert s["after-quick"][0] >= s["quick"][1]
    assert s["after-quick"][0] < s["slow"][1] - 0.5
    assert s["final"][0] >= max(s["slow"][1], s["after-quick"][1])


def test_waves_schedule_waits_for_the_whole_wave(home: Path, tasks_file: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = tasks_file([
        {"id": "slow", "command": helper("interval.py", str(out), "slow", "0.8")},
        {"id": "quick", "command": helper("interval.py", str(out), "quick", "0.1")},
        {"id": "after-quick", "command": helper("interval.py", str(out), "after-quick", "0.1"),
         "blockedBy": ["quick"]},
    ])
    code, _ = run_json(path, "-j", "4", "--schedule", "waves")
    assert code == 0
    s = intervals(out)
    assert s["after-quick"][0] >= s["slow"][1]


def test_timeout_kills_the_whole_tree(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    marker = f"tree-{os.getpid()}-{time.time_ns()}"
    script = " ".join(helper("tree.py", marker, "--ignore-term", "--escape"))
    path = tasks_file({"defaults": {"retries": 0}, "tasks": [{"id": "hang", "command": f"{script}; true",
                                                               "timeout": 1.0}]})
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"kill_grace_seconds": 0.5}))
    start = time.monotonic()
    code, summary = run_json(path, "--config", config)
    assert code == 1
    assert summary["tasks"]["hang"]["status"] == "timeout"
    assert summary["tasks"]["hang"]["error"] == "timed out after 1s"
    assert time.monotonic() - start < 10
    assert processes_with_marker(marker) == []


def test_leftovers_of_a_finished_task_are_ended(home: Path, tasks_file: Callable[..., Path]) -> None:
    marker = f"left-{os.getpid()}-{time.time_ns()}"
    path = tasks_file([{"id": "daemon", "command": f"{' '.join(helper('tree.py', marker, '--escape'))} & "
                                                   "sleep 0.5; exit 0"}])
    code, _ = run_json(path)
    assert code == 0
    assert processes_with_marker(marker) == []


def test_retries_with_exponential_backoff(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    counter = tmp_path / "count"
    flaky = py(f"import pathlib,sys,time; p=pathlib.Path({str(counter)!r}); "
               "n=len(p.read_text().split()) if p.exists() else 0; "
               "p.write_text(p.read_text()+f' {time.time()}' if p.exists() else str(time.time())); "
               "sys.exit(0 if n == 2 else 3)")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"retry_backoff_seconds": 0.3}))
    path = tasks_file([{"id": "flaky", "command": flaky, "retries": 2}])
    done = engine("run", path, "--config", config)
    assert done.returncode == 0, done.stderr
    times = [float(t) for t in counter.read_text().split()]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.3 and times[2] - times[1] >= 0.6  # 0.3 * 2**(attempt-1)
    assert "retrying  flaky  attempt 1 failed (exit code 3); retrying in 0.3s" in done.stderr
    result = json.loads(next(home.glob("memory/temp/parallel-results/*/flaky.json")).read_text())
    assert result["attempts"] == 3 and result["status"] == "success"


def test_failure_skips_transitive_dependents_only(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file({"defaults": {"retries": 0}, "tasks": [
        {"id": "bad", "command": py("import sys; print('boom', file=sys.stderr); sys.exit(4)")},
        {"id": "child", "command": ["true"], "blockedBy": ["bad"]},
        {"id": "grandchild", "command": ["true"], "blockedBy": ["child"]},
        {"id": "independent", "command": ["true"]},
    ]})
    code, summary = run_json(path)
    tasks = summary["tasks"]
    assert code == 1 and summary["status"] == "partial"
    assert tasks["bad"]["status"] == "failed" and tasks["bad"]["error"] == "exit code 4: boom"
    assert tasks["child"]["status"] == "skipped" and tasks["child"]["error"] == "dependency 'bad' failed"
    assert tasks["grandchild"]["status"] == "skipped" and tasks["grandchild"]["error"] == "dependency 'bad' failed"
    assert tasks["independent"]["status"] == "success"


def test_missing_command_is_a_failed_task_not_a_crash(home: Path, tasks_file: Callable[..., Path]) -> None:
    code, summary = run_json(tasks_file([{"id": "x", "command": ["no-such-program-here"]}]))
    assert code == 1
    assert summary["tasks"]["x"]["error"] == "command not found: no-such-program-here"
    assert summary["tasks"]["x"]["exit_code"] == 127


def test_halt_now_stops_running_tasks(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file({"defaults": {"retries": 0}, "tasks": [
        {"id": "long", "command": ["sleep", "30"]},
        {"id": "fails", "command": py("import time,sys; time.sleep(0.3); sys.exit(1)")},
        {"id": "later", "command": ["true"], "blockedBy": ["long"]},
    ]})
    start = time.monotonic()
    code, summary = run_json(path, "--halt", "now")
    assert code == 1 and time.monotonic() - start < 10
    tasks = summary["tasks"]
    assert tasks["fails"]["status"] == "failed"
    assert tasks["long"]["status"] == "cancelled"
    assert tasks["later"]["status"] == "skipped"


def test_halt_soon_lets_running_tasks_finish(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file({"defaults": {"retries": 0}, "tasks": [
        {"id": "running", "command": ["sleep", "0.8"]},
        {"id": "fails", "command": ["false"]},
        {"id": "queued", "command": ["true"], "priority": "low"},
    ]})
    code, summary = run_json(path, "--halt", "soon", "-j", "2")
    tasks = summary["tasks"]
    assert code == 1
    assert tasks["running"]["status"] == "success"
    assert tasks["queued"]["status"] == "skipped"
    assert "--halt soon after 'fails' failed" in tasks["queued"]["error"]


@pytest.mark.parametrize(("sig", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_cancels_the_run(home: Path, tasks_file: Callable[..., Path], sig: int, expected: int) -> None:
    marker = f"sig-{os.getpid()}-{time.time_ns()}"
    path = tasks_file([
        {"id": "a", "command": helper("tree.py", marker)},
        {"id": "b", "command": helper("tree.py", marker)},
        {"id": "c", "command": ["true"], "blockedBy": ["a"]},
    ])
    proc = start_engine(path, "--json")
    wait_for(lambda: tasks_running(home, 2))
    wait_for(lambda: len(processes_with_marker(marker)) == 6)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == expected, err
    summary = json.loads(out)
    assert summary["status"] == "cancelled"
    assert {t: v["status"] for t, v in summary["tasks"].items()} == {"a": "cancelled", "b": "cancelled",
                                                                     "c": "cancelled"}
    assert processes_with_marker(marker) == []
    status = running_status(home)
    assert status and status["state"] == "cancelled"


def test_second_sigint_kills_at_once(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    marker = f"twice-{os.getpid()}-{time.time_ns()}"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"kill_grace_seconds": 60}))
    proc = start_engine(tasks_file([{"id": "stubborn", "command": helper("tree.py", marker, "--ignore-term")}]),
                        "--config", str(config))
    wait_for(lambda: len(processes_with_marker(marker)) == 3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None  # still within the grace period
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 130 and time.monotonic() - start < 5
    assert processes_with_marker(marker) == []


def test_kill_9_then_resume(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    marker = f"resume-{os.getpid()}-{time.time_ns()}"
    log = tmp_path / "log"
    record = lambda name: py(f"open({str(log)!r}, 'a').write('{name}\\n')")  # noqa: E731
    gate = tmp_path / "gate"
    path = tasks_file([
        {"id": "done-early", "command": record("done-early")},
        {"id": "blocked-on-gate",
         "command": ["sh", "-c", f"test -e {gate} || exec {' '.join(helper('tree.py', marker))}"]},
        {"id": "after", "command": record("after"), "blockedBy": ["done-early", "blocked-on-gate"]},
    ])
    proc = start_engine(path)
    wait_for(lambda: len(processes_with_marker(marker)) == 3)
    wait_for(lambda: log.exists() and "done-early" in log.read_text())
    proc.kill()
    proc.communicate(timeout=10)
    status_file = next(home.glob("memory/temp/runs/*/status.json"))
    status = json.loads(status_file.read_text())  # valid JSON after kill -9
    for line in (status_file.parent / "events.jsonl").read_text().splitlines():
        json.loads(line)
    assert status["state"] == "running"
    assert processes_with_marker(marker)  # orphans of the dead engine, until the next run
    gate.touch()
    code, summary = run_json(path, "--resume")
    assert code == 0, summary
    assert summary["run_id"] == status["run_id"]
    assert processes_with_marker(marker) == []
    assert log.read_text().split() == ["done-early", "after"]  # done-early did not run again
    assert summary["tasks"]["blocked-on-gate"]["status"] == "success"


def test_resume_without_earlier_run_is_a_clear_error(home: Path, tasks_file: Callable[..., Path]) -> None:
    done = engine("run", tasks_file([{"id": "a", "command": "true"}]), "--resume")
    assert done.returncode == 2 and "no earlier run of" in done.stderr and "Traceback" not in done.stderr


def test_huge_output_is_bounded(home: Path, tasks_file: Callable[..., Path]) -> None:
    hundred_mb = py("import sys\nchunk = b'x' * 1023 + b'\\n'\n"
                    "for _ in range(100 * 1024): sys.stdout.buffer.write(chunk)\n"
                    "sys.stdout.buffer.write(b'THE END\\n')")
    done = subprocess.Popen([*ENGINE, "run", "--json", str(tasks_file([{"id": "loud", "command": hundred_mb}]))],
                            stdout=subprocess.PIPE, text=True)
    peak = 0
    engine_proc = psutil.Process(done.pid)
    while done.poll() is None:
        try:
            peak = max(peak, engine_proc.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.05)
    out, _ = done.communicate(timeout=60)
    assert done.returncode == 0
    result_file = Path(json.loads(out)["results_dir"]) / "loud.json"
    result = json.loads(result_file.read_text())
    assert len(result["output"].encode()) <= 64 * 1024 and result["output"].endswith("THE END\n")
    assert result_file.stat().st_size < 100 * 1024
    assert Path(result["stdout_file"]).stat().st_size > 100 * 1024 * 1024
    assert peak < 150 * 1024 * 1024


def test_result_files_are_private_and_complete(home: Path, tasks_file: Callable[..., Path],
                                               tmp_path: Path) -> None:
    results = tmp_path / "results"
    path = tasks_file([
        {"id": "a", "subject": "Say hi", "type": "greeting", "command": "echo hi; echo warn >&2",
         "env": {"WHO": "me"}},
        {"id": "b", "blockedBy": ["a"], "command": py(
            "import json,os; deps=json.loads(os.environ['PARALLEL_DEP_RESULTS']); "
            "a=json.load(open(deps['a'])); "
            "json.dump({'from_a': a['output'].strip(), 'task': os.environ['PARALLEL_TASK_ID'], "
            "'claudecode': os.environ.get('CLAUDECODE')}, open(os.environ['PARALLEL_RESULT_FILE'], 'w'))")},
    ])
    code, summary = run_json(path, "--results-dir", results, env={"CLAUDECODE": "1"})
    assert code == 0
    for f in results.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    a = json.loads((results / "a.json").read_text())
    assert a["output"] == "hi\n" and a["stderr"] == "warn\n" and a["subject"] == "Say hi" and a["type"] == "greeting"
    b = json.loads((results / "b.json").read_text())
    assert b["data"] == {"from_a": "hi", "task": "b", "claudecode": None}
    assert summary["results_dir"] == str(results)


def test_json_summary_is_the_only_stdout(home: Path, tasks_file: Callable[..., Path]) -> None:
    done = engine("run", "--json", tasks_file([{"id": "a", "command": "echo noise"},
                                               {"id": "b", "command": "true", "blockedBy": ["a"]}]))
    summary = json.loads(done.stdout)
    assert set(summary) >= {"run_id", "status", "results_dir", "wall_time", "task_time_sum", "speedup",
                            "cost_usd", "tasks", "waves", "merged"}
    assert summary["waves"] == [["a"], ["b"]]
    assert set(summary["tasks"]["a"]) == {"status", "attempts", "exit_code", "start_time", "end_time",
                                          "duration", "error", "error_class", "cost_usd", "tokens", "session_id",
                                          "permission_denials"}


def test_event_lines_and_final_table(home: Path, tasks_file: Callable[..., Path]) -> None:
    done = engine("run", tasks_file([{"id": "a", "command": "true"}, {"id": "b", "command": "false",
                                                                       "retries": 0}]))
    assert done.returncode == 1
    assert "started   a  attempt 1/" in done.stderr and "failed    b  exit code 1" in done.stderr
    assert "\x1b[" not in done.stderr + done.stdout
    assert "task    status" in done.stdout and "parallelism" in done.stdout


def test_quiet_prints_only_the_report(home: Path, tasks_file: Callable[..., Path]) -> None:
    done = engine("run", "--quiet", tasks_file([{"id": "a", "command": "true"}]))
    assert done.returncode == 0 and done.stderr == "" and "parallelism" in done.stdout


def test_dry_run_runs_nothing(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = engine("run", "--dry-run", tasks_file([
        {"id": "a", "command": ["touch", str(marker)]},
        {"id": "b", "prompt": "it's $(rm -rf /) \"quoted\"", "runner": "claude", "blockedBy": ["a"]}]))
    assert done.returncode == 0 and not marker.exists()
    assert "wave 0:" in done.stdout and f"$ touch {marker}" in done.stdout
    assert ("$ claude -p --output-format stream-json --verbose --permission-mode acceptEdits -- "
            "'it'\"'\"'s $(rm -rf /) \"quoted\"'") in done.stdout
    assert not (Path(os.environ["CLAUDE_CONFIG_DIR"]) / "memory" / "temp" / "runs").exists()


def test_prompt_reaches_a_text_runner_as_one_argument(home: Path, tasks_file: Callable[..., Path],
                                                      tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"runners": {"echo": {
        "command": [sys.executable, "-c", "import sys; print(repr(sys.argv[1:]))", "{prompt}"],
        "model_args": ["--model={model}"], "output": "text"}}}))
    prompt = "quotes ' \" $(whoami) `id` {model}\nnew line ünïcode"
    path = tasks_file([{"id": "p", "prompt": prompt, "runner": "echo", "model": "m1"}])
    code, summary = run_json(path, "--config", config)
    assert code == 0
    result = json.loads((Path(summary["results_dir"]) / "p.json").read_text())
    assert result["output"].strip() == repr([prompt, "--model=m1"])


def test_missing_runner_executable_fails_before_anything_runs(home: Path, tasks_file: Callable[..., Path],
                                                              tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"runners": {"ghost": {"command": ["no-such-agent-cli", "{prompt}"],
                                                         "output": "text"}}}))
    marker = tmp_path / "ran"
    done = engine("run", tasks_file([{"id": "a", "command": ["touch", str(marker)]},
                                     {"id": "b", "prompt": "x", "runner": "ghost"}]), "--config", config)
    assert done.returncode == 2 and "runner 'ghost': executable 'no-such-agent-cli' not found" in done.stderr
    assert not marker.exists()


def test_cwd_env_and_missing_directory(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    sub = tmp_path / "sub dir"
    sub.mkdir()
    show = py("import os; print(os.getcwd()); print(os.environ.get('GREETING'))")
    path = tasks_file({"defaults": {"retries": 0}, "tasks": [
        {"id": "here", "command": show, "env": {"GREETING": "hi"}},
        {"id": "there", "command": show, "cwd": "sub dir"},
        {"id": "own-path", "command": ["true"], "env": {"PATH": "/usr/bin:/bin"}},
        {"id": "nowhere", "command": ["true"], "cwd": "missing"},
    ]})
    code, summary = run_json(path, cwd=tmp_path)
    results = Path(summary["results_dir"])
    assert json.loads((results / "here.json").read_text())["output"] == f"{tmp_path}\nhi\n"
    assert json.loads((results / "there.json").read_text())["output"] == f"{sub}\nNone\n"
    assert summary["tasks"]["own-path"]["status"] == "success"
    assert code == 1
    assert summary["tasks"]["nowhere"]["error"] == f"working directory {tmp_path / 'missing'} does not exist"


def test_descriptors_the_engine_inherited_do_not_reach_tasks(home: Path, tasks_file: Callable[..., Path]) -> None:
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    listing = py("import os; print(sorted(int(f) for f in os.listdir('/proc/self/fd')))")
    path = tasks_file([{"id": "fds", "command": listing}])
    try:
        done = subprocess.run([*ENGINE, "run", "--json", str(path)], capture_output=True, text=True, timeout=60,
                              pass_fds=(write_end,))
    finally:
        os.close(read_end)
        os.close(write_end)
    summary = json.loads(done.stdout)
    output = json.loads((Path(summary["results_dir"]) / "fds.json").read_text())["output"]
    assert write_end not in json.loads(output)
    assert json.loads(output)[:3] == [0, 1, 2]


def test_a_starting_engine_leaves_a_live_engines_tasks_alone(home: Path, tasks_file: Callable[..., Path]) -> None:
    # A run that is alive but has not written its first status.json yet: its marker names its engine
    # (this test process), and a process carries its run id. Another engine's recovery must spare it.
    me = psutil.Process()
    active = home / "memory" / "temp" / "runs" / "active"
    active.mkdir(parents=True)
    (active / "young-run").write_text(f"{me.pid} {me.create_time()}")
    task = subprocess.Popen(["sleep", "30"], env={**os.environ, "PARALLEL_RUN_ID": "young-run"})
    try:
        code, _ = run_json(tasks_file([{"id": "a", "command": ["true"]}]))
        assert code == 0
        assert task.poll() is None, "the live run's task was killed"
        assert (active / "young-run").exists()
    finally:
        task.kill()
        task.wait()
