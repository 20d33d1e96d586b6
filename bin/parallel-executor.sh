#!/usr/bin/env bash
# bin/parallel-executor.sh TASKS.json [OPTIONS] is `parallel-executor run TASKS.json [OPTIONS]`.
# Works from any directory, from a checkout or from an install under ~/.claude/memory: it uses
# the virtual environment beside it (venv/ from `make install`, .venv/ from `make test`/`make demo`),
# else $PARALLEL_EXECUTOR_PYTHON, else python3 with the package found on PYTHONPATH.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
py="${PARALLEL_EXECUTOR_PYTHON:-}"
if [ -z "$py" ]; then
  for candidate in "$root/venv/bin/python" "$root/.venv/bin/python"; do
    if [ -x "$candidate" ]; then py="$candidate"; break; fi
  done
fi
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
if [ $# -eq 0 ]; then set -- --help; fi
exec "${py:-python3}" -m parallel_executor run "$@"
