"""The output shapes of the real agent CLIs, for fake_agent.py (see tests/captures/ for the originals)."""

import json
import time
import uuid

CLAUDE_TOOLS = ["Task", "Bash", "Edit", "Glob", "Grep", "Read", "Write", "WebFetch", "WebSearch"]
DENIAL = {"tool_name": "Bash", "tool_use_id": "toolu_01fake", "tool_input": {
    "command": "echo hello-from-mock > mock-was-here.txt", "description": "write a file"}}
GEMINI_400 = json.dumps({"error": {"code": 400, "message": "Request contains an invalid argument.",
                                   "status": "INVALID_ARGUMENT"}})
AIDER_BANNER = ["Aider v0.86.2", "Main model: {model} with diff edit format, infinite output",
                "Weak model: anthropic/claude-3-5-haiku-20241022", "Git repo: .git with 0 files",
                "Repo-map: using 4096 tokens, auto refresh", ""]


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class Shapes:
    def __init__(self, agent, args, fmt, prompt, answer, session, model):
        self.agent, self.args, self.fmt, self.prompt, self.answer_text = agent, args, fmt, prompt, answer
        self.session = session
        self.model = model or {"claude": "claude-opus-5-5", "gemini": "gemini-2.5-pro", "codex": "gpt-5.5",
                               "aider": "anthropic/claude-3-5-sonnet-20241022"}.get(agent, "model")

    def head(self, sleeping):
        """What a streaming format prints before the answer (and, sleeping, first progress)."""
        if self.agent == "claude" and self.fmt == "stream-json":
            progress = [self.claude_assistant(f"working on: {self.prompt[:40]}")] if sleeping else []
            return [self.claude_init(), *progress]
        if self.agent == "codex" and self.fmt == "jsonl":
            return [{"type": "thread.started", "thread_id": self.session}, {"type": "turn.started"}]
        if self.agent == "gemini" and self.fmt == "stream-json":
            return [{"type": "init", "timestamp": now(), "session_id": self.session, "model": "auto"},
                    {"type": "message", "timestamp": now(), "role": "user", "content": self.prompt}]
        return []

    def answer(self, mode):
        """(stdout lines, stderr text, exit code)."""
        return getattr(self, self.agent)(mode)

    # Claude Code: -p --output-format stream-json --verbose | json | text
    def claude(self, mode):
        failed = mode == "error"
        result = self.claude_result(mode)
        if self.fmt == "stream-json":
            lines = [] if failed else [self.claude_assistant(self.answer_text)]
            return [*lines, result], "", 1 if failed else 0
        if self.fmt == "json":
            if "--verbose" in self.args:  # json + --verbose: one array of every event
                events = [self.claude_init(), self.claude_assistant(self.answer_text), result]
                return [json.dumps(events)], "", 1 if failed else 0
            return [result], "", 1 if failed else 0
        return ["Error: Reached max turns (3)" if failed else self.answer_text], "", 1 if failed else 0

    def claude_init(self):
        return {"type": "system", "subtype": "init", "cwd": ".", "session_id": self.session, "tools": CLAUDE_TOOLS,
                "mcp_servers": [], "model": self.model, "permissionMode": "default",
                "apiKeySource": "ANTHROPIC_API_KEY", "claude_code_version": "2.1.332", "output_style": "default",
                "agents": ["claude", "Explore", "general-purpose", "Plan", "statusline-setup"],
                "uuid": str(uuid.uuid4())}

    def claude_assistant(self, text):
        return {"type": "assistant", "message": {
            "id": f"msg_01{uuid.uuid4().hex[:22]}", "type": "message", "role": "assistant", "model": self.model,
            "content": [{"type": "text", "text": text}], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 50, "output_tokens": 1, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0}},
            "parent_tool_use_id": None, "session_id": self.session, "uuid": str(uuid.uuid4()), "timestamp": now(),
            "request_id": "req_01fake"}

    def claude_result(self, mode):
        failed = mode == "error"
        doc = {"duration_api_ms": 1000, "stop_reason": "tool_use" if failed else "end_turn",
               "session_id": self.session, "total_cost_usd": 0.0123,
               "usage": {"input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 7,
                         "output_tokens": 50, "service_tier": "standard"},
               "modelUsage": {self.model: {"inputTokens": 100, "outputTokens": 50, "cacheReadInputTokens": 7,
                                           "cacheCreationInputTokens": 0, "costUSD": 0.0123}},
               "permission_denials": [DENIAL] if mode in ("denied", "error") else [],
               "terminal_reason": "max_turns" if failed else "completed", "is_error": failed, "num_turns": 3,
               "subtype": "error_max_turns" if failed else "success", "api_error_status": None}
        if failed:
            doc["errors"] = ["Reached maximum number of turns (3)"]
        else:
            doc["result"] = self.answer_text
        doc.update({"type": "result", "duration_ms": 1234, "uuid": str(uuid.uuid4()), "result_index": 0})
        return doc

    # Codex: exec --json
    def codex(self, mode):
        if self.fmt != "jsonl":
            return ([] if mode == "error" else [self.answer_text]), "", 1 if mode == "error" else 0
        events = [{"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "thinking"}}]
        if mode == "error":
            message = "Quota exceeded. Check your plan and billing details."
            events += [{"type": "error", "message": message}, {"type": "turn.failed", "error": {"message": message}}]
            return events, "", 1
        usage = {"cached_input_tokens": 2, "cache_write_input_tokens": 0, "reasoning_output_tokens": 3}
        events += [{"type": "item.completed", "item": {"id": "item_1", "type": "agent_message", "text": "draft"}},
                   {"type": "turn.completed", "usage": {"input_tokens": 10, "output_tokens": 5, **usage}},
                   {"type": "turn.started"},
                   {"type": "item.completed", "item": {"id": "item_2", "type": "agent_message",
                                                       "text": self.answer_text}},
                   {"type": "turn.completed", "usage": {"input_tokens": 20, "output_tokens": 7, **usage}}]
        return events, "", 0

    # Gemini CLI: --output-format stream-json | json | text
    def gemini(self, mode):
        failed = mode == "error"
        if self.fmt == "stream-json":
            if failed:
                return [{"type": "result", "timestamp": now(), "status": "error",
                         "error": {"type": "unknown", "message": f"[API Error: {GEMINI_400}]"},
                         "stats": self.gemini_stream_stats(0, 0)}], "", 144
            half = len(self.answer_text) // 2
            chunks = [c for c in (self.answer_text[:half], self.answer_text[half:]) if c]
            return [*({"type": "message", "timestamp": now(), "role": "assistant", "content": c, "delta": True}
                      for c in chunks),
                    {"type": "result", "timestamp": now(), "status": "success",
                     "stats": self.gemini_stream_stats(40, 9)}], "", 0
        if failed:  # json: stdout empty, the error object on stderr after log lines
            doc = {"session_id": self.session, "error": {"type": "Error", "message": GEMINI_400, "code": 400}}
            return [], ("Attempt 1 failed with status 400.\n" + json.dumps(doc, indent=2) + "\n"), 144
        if self.fmt == "json":
            tokens = {"input": 40, "prompt": 40, "candidates": 9, "total": 49, "cached": 0, "thoughts": 0, "tool": 0}
            doc = {"session_id": self.session, "response": self.answer_text, "stats": {"models": {self.model: {
                "api": {"totalRequests": 1, "totalErrors": 0, "totalLatencyMs": 900}, "tokens": tokens}}}}
            return [json.dumps(doc, indent=2)], "", 0
        return [self.answer_text], "", 0

    def gemini_stream_stats(self, tokens_in, tokens_out):
        counts = {"total_tokens": tokens_in + tokens_out, "input_tokens": tokens_in, "output_tokens": tokens_out,
                  "cached": 0, "input": tokens_in}
        return {**counts, "duration_ms": 66, "tool_calls": 0, "models": {self.model: counts}}

    # aider --no-stream --no-pretty --message=…: banners, the answer, a Tokens line; API errors exit 0
    def aider(self, mode):
        lines = [line.format(model=self.model) for line in AIDER_BANNER]
        if mode == "error":
            return [*lines, 'litellm.BadRequestError: AnthropicException - {"type": "error", "error": {"type": '
                    '"invalid_request_error", "message": "model: claude-nope"}}', ""], \
                "Warning: Input is not a terminal (fd=0).\n", 0
        tokens = "Tokens: 11 sent, 7 received. Cost: $0.00014 message, $0.00014 session."
        return [*lines, self.answer_text, "", tokens], "Warning: Input is not a terminal (fd=0).\n", 0
