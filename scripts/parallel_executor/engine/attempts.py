"""How a task becomes an attempt (argv, environment, files) and how an attempt's output is read
(§7). Pure translation, no decision: the scheduler decides when, a backend runs it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from parallel_executor.agents.readers import Outcome
from parallel_executor.agents.runners import argv_for, reader_for
from parallel_executor.engine.backends import AttemptSpec
from parallel_executor.engine.records import TaskFiles, TaskRun
from parallel_executor.plan.config import RunnerConfig
from parallel_executor.system.procs import signal_name


class Attempts:
    def __init__(self, runners: Mapping[str, RunnerConfig], run_id: str, base_env: Mapping[str, str],
                 files: Mapping[str, TaskFiles], fresh: bool) -> None:
        self.runners, self.files, self.fresh = runners, files, fresh
        self.base_env = {k: v for k, v in base_env.items() if k != "CLAUDECODE"}
        self.base_env["PARALLEL_RUN_ID"] = run_id

    def prepare(self, task: TaskRun) -> AttemptSpec:
        spec = task.spec
        env = {
            **self.base_env, **spec.env,
            "PARALLEL_RUN_ID": self.base_env["PARALLEL_RUN_ID"],
            "PARALLEL_TASK_ID": spec.id,
            "PARALLEL_RESULT_FILE": task.files.data,
            "PARALLEL_DEP_RESULTS": json.dumps({d: self.files[d].result for d in spec.blocked_by}),
        }
        env.pop("CLAUDECODE", None)
        return AttemptSpec(spec.id, task.attempts, argv_for(spec, self.runners), spec.cwd, env, task.files,
                           spec.timeout, clear_data=task.attempts > 1 or not self.fresh)

    def outcome(self, task: TaskRun, exit_code: int) -> Outcome:
        """What the runner's reader makes of the output; a failure always has an error to show."""
        outcome = reader_for(task.spec, self.runners)(task.stdout, exit_code)
        if outcome.ok or outcome.error:
            return outcome
        how = f"killed by {signal_name(exit_code)}" if exit_code < 0 else f"exit code {exit_code}"
        last = task.stderr.strip().splitlines()
        return dataclasses.replace(outcome, error=f"{how}: {last[-1][:200]}" if last else how)
