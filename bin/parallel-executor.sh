#!/usr/bin/env bash
# bin/parallel-executor.sh TASKS.json [OPTIONS] is `parallel-executor run TASKS.json [OPTIONS]`.
# Works from any directory, from a checkout or from an install under ~/.claude/memory.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_python.sh"
if [ $# -eq 0 ]; then set -- --help; fi
exec "$py" -m parallel_executor run "$@"
