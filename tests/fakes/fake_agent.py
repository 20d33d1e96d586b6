"""A stand-in for the agent CLIs (claude, codex, gemini) that prints their real output formats.

Invoked through the executables beside it (claude, codex, gemini): fake_agent.py AGENT ARGS...
FAKE_AGENT_MODE picks the answer: success (default), error, garbage, data, slow.
FAKE_AGENT_LOG, when set, is a directory where each call records its argv and CLAUDECODE.
"""

import json
import os
import sys
import time
import uuid
from pathlib import Path

agent, args = sys.argv[1], sys.argv[2:]
mode = os.environ.get("FAKE_AGENT_MODE", "success")
log = os.environ.get("FAKE_AGENT_LOG")
if log:
    record = {"agent": agent, "argv": args, "claudecode": os.environ.get("CLAUDECODE")}
    Path(log, f"{agent}-{os.getpid()}.json").write_text(json.dumps(record))
prompt = args[args.index("-p") + 1] if "-p" in args else args[-1]
answer = f"done: {prompt[:40]}"
if mode == "data":
    answer = 'Here you are:\n```json\n{"files": ["a.py"], "ok": true}\n```'
if mode == "slow":
    time.sleep(30)
if mode == "garbage":
    print("Welcome to the agent! <html>not json</html>")
    sys.exit(0)

if agent == "claude":
    failed = mode == "error"
    print(json.dumps({
        "type": "result", "subtype": "error_max_turns" if failed else "success", "is_error": failed,
        "duration_ms": 1234, "duration_api_ms": 1000, "num_turns": 3, "result": "" if failed else answer,
        "session_id": str(uuid.uuid4()), "total_cost_usd": 0.0123,
        "usage": {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 7},
    }))
    sys.exit(1 if failed else 0)
if agent == "codex":
    events = [{"type": "thread.started", "thread_id": "th_1"}, {"type": "turn.started"},
              {"type": "item.completed", "item": {"id": "i0", "type": "reasoning", "text": "thinking"}}]
    if mode == "error":
        events += [{"type": "turn.failed", "error": {"message": "model overloaded"}}]
    else:
        events += [{"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": "draft"}},
                   {"type": "turn.completed", "usage": {"input_tokens": 10, "cached_input_tokens": 2,
                                                        "output_tokens": 5}},
                   {"type": "turn.started"},
                   {"type": "item.completed", "item": {"id": "i2", "type": "agent_message", "text": answer}},
                   {"type": "turn.completed", "usage": {"input_tokens": 20, "cached_input_tokens": 0,
                                                        "output_tokens": 7}}]
    for event in events:
        print(json.dumps(event))
    sys.exit(1 if mode == "error" else 0)
if agent == "gemini":
    doc = {"response": answer, "stats": {"models": {"gemini-2.5-pro": {
        "api": {"totalRequests": 1, "totalLatencyMs": 900},
        "tokens": {"prompt": 40, "candidates": 9, "total": 49}}}}}
    if mode == "error":
        doc = {"response": "", "stats": {}, "error": {"type": "ApiError", "message": "quota exceeded", "code": 429}}
    print(json.dumps(doc))
    sys.exit(1 if mode == "error" else 0)
sys.exit(f"fake_agent: unknown agent {agent}")
