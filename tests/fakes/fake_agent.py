"""A stand-in for the agent CLIs (claude, codex, gemini, aider) that prints their real output shapes
(tests/captures/, shared/AGENT-CLIS.md). Invoked through the executables beside it:
fake_agent.py AGENT ARGS...

The prompt is the element after `--`, else the value of `--prompt=` / `--message=`, else (older
argv forms) the value after `-p` / `--message`, else the last argument. The output format follows
the argv (`--output-format json|stream-json|text`, codex `--json`).

FAKE_AGENT_MODE picks the answer:
  success (default)  the CLI's success shape; the answer is `done: <first 40 chars of the prompt>`
  error              a permanent failure in the CLI's shape (claude error_max_turns, codex turn.failed
                     "Quota exceeded", gemini 400, aider litellm.BadRequestError with exit 0)
  denied             claude: success, with the Bash call it was refused in permission_denials
  garbage            a line that is no format at all, exit 0
  data               the answer holds a ```json block: {"files": ["a.py"], "ok": true}
  slow               sleep 30 s first
  capture:NAME       replay tests/captures/NAME byte for byte (stdout, stderr, exit code); a capture
                     that ended in a timeout (rc 124: the CLI never gave up) then hangs until killed
FAKE_AGENT_SCRIPT    a file with one mode per line: each call takes the next (the last one repeats)
FAKE_AGENT_SLEEP     seconds to sleep before answering (streaming formats print their first lines first)
FAKE_AGENT_LOG       a directory: each call writes AGENT-PID.json with its argv, CLAUDECODE, the
                     CLAUDE_CODE_MAX_RETRIES and IS_SANDBOX it got, and its start and end times
"""

import json
import os
import sys
import time
import uuid
from pathlib import Path

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
agent, args = sys.argv[1], sys.argv[2:]
started = time.time()


def next_scripted(path):
    import fcntl
    with open(path) as script:
        fcntl.flock(script, fcntl.LOCK_EX)  # one caller at a time reads and bumps the counter
        modes = [line.strip() for line in script if line.strip()] or ["success"]
        counter = Path(path + ".count")
        taken = int(counter.read_text() or 0) if counter.exists() else 0
        counter.write_text(str(taken + 1))
        return modes[min(taken, len(modes) - 1)]


def record(end):
    log = os.environ.get("FAKE_AGENT_LOG")
    if not log:
        return
    doc = {"agent": agent, "argv": args, "claudecode": os.environ.get("CLAUDECODE"), "mode": mode,
           "env": {k: os.environ.get(k) for k in ("CLAUDE_CODE_MAX_RETRIES", "IS_SANDBOX")},
           "start": started, "end": end}
    target = Path(log, f"{agent}-{os.getpid()}.json")
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_text(json.dumps(doc))
    os.replace(temp, target)


def option(*names):
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1:]
    return None


def the_prompt():
    if "--" in args and args.index("--") + 1 < len(args):
        return args[args.index("--") + 1]
    for arg in args:
        if arg.startswith(("--prompt=", "--message=")):
            return arg.split("=", 1)[1]
    found = option("--message") if agent == "aider" else None
    if found is None and "-p" in args and args.index("-p") + 1 < len(args):
        found = args[args.index("-p") + 1]
        found = None if found.startswith("--") and agent == "claude" else found
    return found if found is not None else (args[-1] if args else "")


def emit(*docs):
    for doc in docs:
        sys.stdout.write((doc if isinstance(doc, str) else json.dumps(doc)) + "\n")
    sys.stdout.flush()


mode = next_scripted(os.environ["FAKE_AGENT_SCRIPT"]) if os.environ.get("FAKE_AGENT_SCRIPT") else \
    os.environ.get("FAKE_AGENT_MODE", "success")
record(None)
prompt = the_prompt()
answer = f"done: {prompt[:40]}"
if mode == "data":
    answer = 'Here you are:\n```json\n{"files": ["a.py"], "ok": true}\n```'
fmt = option("--output-format", "-o") or ("json" if "--json" in args else "text")
if agent == "codex":
    fmt = "jsonl" if "--json" in args else "text"
session = str(uuid.uuid4())
model = option("--model", "-m")

if mode.startswith("capture:"):
    capture = CAPTURES / mode.split(":", 1)[1]
    sys.stdout.buffer.write((capture / "stdout").read_bytes())
    sys.stdout.flush()
    sys.stderr.buffer.write((capture / "stderr").read_bytes())
    sys.stderr.flush()
    code = int((capture / "rc").read_text())
    if code == 124:
        time.sleep(3600)
    record(time.time())
    sys.exit(code)

if mode == "garbage":
    print("Welcome to the agent! <html>not json</html>")
    record(time.time())
    sys.exit(0)

import fake_shapes  # noqa: E402  (beside this file: the CLIs' output shapes)

shapes = fake_shapes.Shapes(agent, args, fmt, prompt, answer, session, model)
delay = 30.0 if mode == "slow" else float(os.environ.get("FAKE_AGENT_SLEEP") or 0)
head = shapes.head(sleeping=bool(delay))  # the lines a streaming CLI prints before its answer
if delay:
    emit(*head)
    head = []
    time.sleep(delay)
out, err, code = shapes.answer(mode)
emit(*head, *out)
if err:
    sys.stderr.write(err)
    sys.stderr.flush()
record(time.time())
sys.exit(code)
