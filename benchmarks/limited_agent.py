"""A fake Claude agent behind a shared rate limit, for benchmarks/ratelimit.py.

At most K of its processes (env LIMITED_AGENT_SLOTS, default 4) are "in flight" at once,
machine-wide: K slot files in the directory env LIMITED_AGENT_DIR, each tried with
flock(LOCK_EX | LOCK_NB); holding one is being in flight (the kernel frees it when the process
dies, however it dies). With a slot it prints Claude's stream-json start line, works for
LIMITED_AGENT_SECONDS (default 1), then prints the answer and the success result and exits 0.
With none free it answers at once as Claude Code 2.1.332 does on a 429 with its own retries off
(CLAUDE_CODE_MAX_RETRIES=0): the start line, the synthetic assistant message, the result object
with is_error true and api_error_status 429, exit code 1.

The lines are the real captures in tests/captures/ (claude-mock-ok-stream, and
claude-mock-e429's result object byte for byte; the synthetic assistant line of a 429 is
claude-mock-e529-stream's with the 429's fields). Each call appends one line to
LIMITED_AGENT_DIR/calls.log: `ok START END TASK` or `429 TIME TASK` (Unix times; TASK is
PARALLEL_TASK_ID, else the prompt), so a benchmark counts the 429s and sees the real in-flight
count over time. Stdlib only, no argparse: it starts in about 20 ms.

Usage: limited_agent.py [-- PROMPT]   (env LIMITED_AGENT_DIR, default /tmp/limited-agent)"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time

# Few imports (no pathlib, tempfile, uuid): the benchmark runs it as `python -I -S`, and the time it
# takes to start counts in every task's turnaround.
CAPTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "captures")


def capture_lines(name: str) -> list[str]:
    with open(os.path.join(CAPTURES, name, "stdout"), encoding="utf-8") as f:
        return f.read().splitlines()


def take_slot(directory: str, slots: int) -> int | None:
    """A free slot's file descriptor (kept open: the slot is held until this process ends), or None."""
    first = os.getpid() % slots  # spread the first tries; any order is correct
    for i in range(slots):
        fd = os.open(os.path.join(directory, f"slot-{(first + i) % slots}"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


def log_call(directory: str, line: str) -> None:
    fd = os.open(os.path.join(directory, "calls.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())  # one short O_APPEND write: never interleaved
    finally:
        os.close(fd)


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def rejected() -> list[str]:
    """Claude's stream on a 429: its start line, the synthetic assistant message, the result object."""
    result = capture_lines("claude-mock-e429")[0]
    session = json.loads(result)["session_id"]
    init, synthetic = capture_lines("claude-mock-e529-stream")[:2]
    init = init.replace("4047c27a-a047-460f-aef3-e831282d86e3", session)
    message = json.loads(synthetic)
    message.update(session_id=session, error="rate_limit", api_error_status=429, api_error_type="rate_limit_error")
    message["message"]["content"][0]["text"] = json.loads(result)["result"]
    return [init, json.dumps(message, ensure_ascii=False, separators=(",", ":")), result]


def main() -> int:
    argv = sys.argv[1:]
    prompt = " ".join(argv[argv.index("--") + 1:]) if "--" in argv else " ".join(argv)
    task = os.environ.get("PARALLEL_TASK_ID") or prompt or "-"
    directory = os.environ.get("LIMITED_AGENT_DIR") or "/tmp/limited-agent"
    os.makedirs(directory, exist_ok=True)
    slots = int(os.environ.get("LIMITED_AGENT_SLOTS", "4"))
    seconds = float(os.environ.get("LIMITED_AGENT_SECONDS", "1"))
    cwd = json.dumps(os.getcwd())[1:-1]

    slot = take_slot(directory, slots)
    if slot is None:
        log_call(directory, f"429 {time.time():.6f} {task}")
        for line in rejected():
            emit(line.replace("$RUN", cwd))
        return 1

    start = time.time()
    init, assistant, result = capture_lines("claude-mock-ok-stream")
    h = os.urandom(16).hex()
    session = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"  # a uuid4
    answer = json.dumps(f"done: {task}", ensure_ascii=False)[1:-1]

    def fix(line: str) -> str:
        return line.replace("d164a956-c9e5-44dd-aa88-e65a867aadf4", session).replace("hi from mock", answer) \
                   .replace("$RUN", cwd)

    emit(fix(init))
    time.sleep(seconds)
    emit(fix(assistant))
    emit(fix(result))
    log_call(directory, f"ok {start:.6f} {time.time():.6f} {task}")  # still holding the slot
    os.close(slot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
