"""Helpers of tests/fuzz_test.py: generators of hostile inputs and an in-process harness for the CLI."""
