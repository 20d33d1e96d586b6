#!/usr/bin/env bash
# bin/parallel-executor.sh TASKS.json [OPTIONS] is `parallel-executor run TASKS.json [OPTIONS]`;
# a first argument that is a subcommand (status, history, validate, ...) or an option such as
# --help is passed on as it is. Works from any directory, from a checkout or from an install
# under ~/.claude/memory.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_python.sh"
exec "$py" -c '
import sys
from parallel_executor.cli import cli, main
args = sys.argv[1:] or ["--help"]
if not args[0].startswith("-") and args[0] not in cli.commands:
    args = ["run", *args]
sys.exit(main(args))
' "$@"
