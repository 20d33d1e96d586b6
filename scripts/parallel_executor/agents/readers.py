"""Reading an agent CLI's output into an Outcome (§7): one reader per `output` kind of the config,
called as `READERS[kind](stdout, stderr, exit_code)` once the attempt has ended. Each knows its
CLI's real shapes (shared/AGENT-CLIS.md; the captures in tests/captures/).

A reader never raises: output it cannot read is a failed task with a clear error. A failure is
classed `transient` (worth retrying: rate limit, overload, 5xx, network) or `permanent`
(authentication, bad flag, unknown model, quota, a limit reached), or left unclassed (None).
"""

from __future__ import annotations

from parallel_executor.agents.aider_output import read_aider_text
from parallel_executor.agents.claude_output import read_claude_json, read_claude_stream
from parallel_executor.agents.codex_output import read_codex_jsonl
from parallel_executor.agents.gemini_output import read_gemini_json, read_gemini_stream
from parallel_executor.agents.outcome import PERMANENT, TRANSIENT, Outcome, Reader, structured_in
from parallel_executor.agents.streams import ends_attempt, live_text

__all__ = ["PERMANENT", "READERS", "TRANSIENT", "Outcome", "Reader", "ends_attempt", "live_text",
           "read_aider_text", "read_claude_json", "read_claude_stream", "read_codex_jsonl", "read_gemini_json",
           "read_gemini_stream", "read_text", "structured_in"]


def read_text(stdout: str, stderr: str, exit_code: int) -> Outcome:
    """stdout is the result; the exit code says whether it worked (the engine words the error:
    "exit code N: <stderr's last line>")."""
    return Outcome(ok=exit_code == 0, result=stdout)


READERS: dict[str, Reader] = {
    "text": read_text,
    "claude-stream": read_claude_stream,
    "claude-json": read_claude_json,
    "codex-jsonl": read_codex_jsonl,
    "gemini-stream": read_gemini_stream,
    "gemini-json": read_gemini_json,
    "aider-text": read_aider_text,
}
