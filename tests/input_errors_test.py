"""Zero tracebacks: every bad task file, config or command-line value is exit 2 and one clear line
per problem (PRODUCT §4), and what could not run is refused before anything starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import engine

OK_TASK = {"id": "a", "command": ["true"]}


# 5. Printing what stdout cannot encode: a UnicodeEncodeError before.

def test_a_file_name_that_is_not_utf8_prints(home: Path, tmp_path: Path) -> None:
    path = tmp_path / os.fsdecode(b"\xff.json")
    path.write_text(json.dumps([OK_TASK]))
    strict = {"PYTHONIOENCODING": "utf-8"}  # errors="strict", as under most UTF-8 locales
    for command in (["validate"], ["run", "--dry-run"], ["analyze"]):
        done = engine(*command, path, env=strict)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert engine("validate", path, env=strict).stdout == f"{tmp_path}/\\udcff.json: OK, 1 tasks in 1 waves\n"
