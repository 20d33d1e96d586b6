"""`hook check-parallel`: the Claude Code Stop hook (PRODUCT §14).

Exit 2 with feedback on stderr makes Claude Code hand that text to the model and let it answer
(AGENT-CLIS §8b); exit 0 lets the session stop. Anything this hook cannot read is exit 0, silent.
"""

from __future__ import annotations

import sys
from pathlib import Path

from parallel_executor.system.jsonfile import parse

MAX_INPUT = 1 << 20  # Claude Code sends well under a KiB
DEFAULT_MAX_PARALLEL = 10


def main(check: str) -> int:
    # The one broad except of the package: a Stop hook runs inside someone's Claude Code session,
    # and a traceback or an unexpected exit code there would block or confuse that session for
    # a bug of ours. Whatever goes wrong (bad input, a file we cannot read, a bug), let it stop.
    try:
        return _check_parallel()
    except Exception:
        return 0


def _check_parallel() -> int:
    from parallel_executor.claude.hook import last_turn, problem, read_tail

    raw = sys.stdin.buffer.read(MAX_INPUT + 1)
    if len(raw) > MAX_INPUT:
        return 0
    event = parse(raw.decode("utf-8"))
    if not isinstance(event, dict) or event.get("stop_hook_active") is True:
        return 0  # the model already had our feedback once: never hold a session twice
    path = event.get("transcript_path")
    if not isinstance(path, str) or not Path(path).is_file():
        return 0
    last = event.get("last_assistant_message")
    feedback = problem(last_turn(read_tail(Path(path))), last if isinstance(last, str) else "", _max_parallel())
    if feedback is None:
        return 0
    sys.stderr.write(feedback + "\n")
    return 2


def _max_parallel() -> int:
    from parallel_executor.plan.config import load_config

    try:
        return load_config().max_parallel_tasks
    except Exception:  # a broken config must not silence the check, nor break the session (see main)
        return DEFAULT_MAX_PARALLEL
