"""parallel-executor: run AI coding subagents and shell tasks truly in parallel."""

__version__ = "0.1.0"
