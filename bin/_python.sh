# Sourced by the scripts beside it: picks the Python that has the package's dependencies
# (venv/ from `make install`, .venv/ from `make test`/`make demo`, else $PARALLEL_EXECUTOR_PYTHON,
# else python3) and puts the package on PYTHONPATH. Sets $py and $root.
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
py="${PARALLEL_EXECUTOR_PYTHON:-}"
if [ -z "$py" ]; then
  for candidate in "$root/venv/bin/python" "$root/.venv/bin/python"; do
    if [ -x "$candidate" ]; then py="$candidate"; break; fi
  done
fi
py="${py:-python3}"
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
