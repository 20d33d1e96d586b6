# Sourced by the scripts beside it: picks the Python that has the package. Installed
# (`make install`: bin/ beside venv/ under ~/.claude/memory), the venv's own non-editable copy;
# in a checkout, .venv/ (`make test`/`make demo`), else $PARALLEL_EXECUTOR_PYTHON, else python3,
# with the checkout's scripts/ on PYTHONPATH. Sets $py and $root.
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
py="${PARALLEL_EXECUTOR_PYTHON:-}"
if [ -z "$py" ] && [ -x "$root/venv/bin/python" ]; then
  py="$root/venv/bin/python"
else
  if [ -z "$py" ] && [ -x "$root/.venv/bin/python" ]; then py="$root/.venv/bin/python"; fi
  py="${py:-python3}"
  export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
fi
