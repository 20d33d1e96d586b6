"""How a task becomes an attempt (argv, environment, files) and how an attempt's output is read
(§7). Pure translation, no decision: the scheduler decides when, a backend runs it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from parallel_executor.agents.outcome import Outcome
from parallel_executor.agents.runners import argv_for
from parallel_executor.engine.backends import AttemptSpec
from parallel_executor.engine.records import TaskFiles, TaskRun
from parallel_executor.plan.config import RunnerConfig
from parallel_executor.plan.controls import PLACEHOLDER
from parallel_executor.system.fsutil import tail_file
from parallel_executor.system.jsonfile import read_json
from parallel_executor.system.procs import signal_name

ANSWER_BYTES = 64 * 1024  # of a dependency's answer put into a prompt (§4)
AGENT_OUTPUT_BYTES = 8 << 20  # of an agent's stdout read at its end: its result line may be long
LIVE_BYTES = 16 * 1024  # of a running agent's stdout read to show its latest message


class Attempts:
    def __init__(self, runners: Mapping[str, RunnerConfig], run_id: str, base_env: Mapping[str, str],
                 files: Mapping[str, TaskFiles], fresh: bool) -> None:
        self.runners, self.files, self.fresh = runners, files, fresh
        self.base_env = {k: v for k, v in base_env.items() if k != "CLAUDECODE"}
        self.base_env["PARALLEL_RUN_ID"] = run_id

    def prepare(self, task: TaskRun) -> AttemptSpec:
        spec = task.spec
        runner = self.runners[spec.runner] if spec.runner else None
        env = {
            **self.base_env, **(runner.env if runner else {}), **spec.env,
            "PARALLEL_RUN_ID": self.base_env["PARALLEL_RUN_ID"],
            "PARALLEL_TASK_ID": spec.id,
            "PARALLEL_RESULT_FILE": task.files.data,
            "PARALLEL_DEP_RESULTS": json.dumps({d: self.files[d].result for d in spec.blocked_by}),
        }
        env.pop("CLAUDECODE", None)
        prompt = self.fill(spec.prompt) if spec.prompt and "{{" in spec.prompt else None
        return AttemptSpec(spec.id, task.attempts, argv_for(spec, self.runners, prompt), spec.cwd, env, task.files,
                           spec.timeout, clear_data=task.attempts > 1 or not self.fresh)

    def fill(self, prompt: str) -> str:
        """The prompt with each {{result:ID}} / {{data:ID}} replaced by that dependency's result (§4);
        one pass, so text coming from a result is never scanned again."""
        docs: dict[str, Any] = {}

        def value(match: Any) -> str:
            kind, tid = match.group(1), match.group(2)
            if tid not in docs:
                docs[tid] = _result(self.files[tid].result)
            doc = docs[tid]
            if doc is None:
                return f"[{tid}: no result]"
            if kind == "data":
                body = json.dumps(doc.get("data"), ensure_ascii=False)
            else:
                body = _last_bytes(str(doc.get("output") or ""), ANSWER_BYTES)
            status = doc.get("status")
            if status == "success":
                return body
            why = doc.get("error") if status in ("failed", "timeout") else doc.get("reason")
            return f"[{tid} {status}: {why or status}]" + (f"\n{body}" if body and body != "null" else "")

        return PLACEHOLDER.sub(value, prompt)

    def outcome(self, task: TaskRun, exit_code: int) -> Outcome:
        """What the runner's reader makes of the output; a failure always has an error to show."""
        spec = task.spec
        stdout = task.stdout
        if spec.runner is not None and len(stdout.encode()) >= ANSWER_BYTES // 2:
            stdout = tail_file(task.files.stdout, AGENT_OUTPUT_BYTES)[0] or stdout
        if spec.runner is None:  # a command: its exit code says whether it worked
            outcome = Outcome(ok=exit_code == 0, result=stdout)
        else:
            from parallel_executor.agents.readers import READERS  # an agent's formats, loaded when first needed

            outcome = READERS[self.runners[spec.runner].output](stdout, task.stderr, exit_code)
        if outcome.ok and outcome.denials and spec.fail_on_denials:
            return dataclasses.replace(outcome, ok=False, error_class="permanent",
                                       error="denied: " + ", ".join(outcome.denials))
        if outcome.ok or outcome.error:
            return outcome
        how = f"killed by {signal_name(exit_code)}" if exit_code < 0 else f"exit code {exit_code}"
        last = task.stderr.strip().splitlines()
        return dataclasses.replace(outcome, error=f"{how}: {last[-1][:200]}" if last else how)

    def live(self, task: TaskRun) -> tuple[str | None, str | None]:
        """A running agent's latest message, and why its attempt must end now (Codex waiting for a
        network that is not there never exits by itself), read from its output so far."""
        if task.spec.runner is None:
            return None, None
        from parallel_executor.agents.readers import ends_attempt, live_text

        kind = self.runners[task.spec.runner].output
        text = fatal = None
        tail, cut = tail_file(task.files.stdout, LIVE_BYTES)
        lines = tail.splitlines()[1 if cut else 0:]  # the first line of a cut tail is a piece of one
        for line in reversed(lines):
            fatal = fatal or ends_attempt(kind, line)
            text = text or live_text(line)
            if text:
                break
        return text, fatal


def _result(path: str) -> dict[str, Any] | None:
    try:
        doc = read_json(path)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _last_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8", errors="surrogatepass")
    return text if len(data) <= limit else data[-limit:].decode("utf-8", errors="ignore")
