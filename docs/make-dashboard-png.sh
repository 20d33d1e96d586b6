#!/bin/sh
# Regenerates docs/dashboard.png (the README's picture of the dashboard of `parallel-executor serve`):
# starts a server and, through its API, a small run with a failure, tasks that print as they go and
# tasks that wait for them, then photographs the page with headless Chromium while the run is live.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PE="$ROOT/.venv/bin/parallel-executor"
PY="$ROOT/.venv/bin/python"
WORK=$(mktemp -d)
SERVER=""
cleanup() {
  [ -z "${RUN_ID:-}" ] || "$PE" cancel "$RUN_ID" >/dev/null 2>&1 || true
  [ -z "$SERVER" ] || { kill -INT "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT
export CLAUDE_CONFIG_DIR="$WORK/claude"
cat > "$WORK/tasks.json" <<'TASKS'
{"tasks": [
  {"id": "lint", "subject": "ruff", "command": ["sh", "-c", "sleep 0.3; echo 'All checks passed!'"]},
  {"id": "typecheck", "command": ["sh", "-c",
    "sleep 0.6; echo 'checking 84 source files'; echo 'src/app/models.py:41: error: Incompatible return value type (got \"str\", expected \"int\")' >&2; echo 'Found 1 error in 1 file (checked 84 source files)' >&2; exit 1"]},
  {"id": "build", "command": ["sh", "-c", "for i in $(seq 1 120); do echo \"compiling module $i/120\"; sleep 0.25; done"]},
  {"id": "docs", "command": ["sh", "-c", "for i in $(seq 1 60); do echo \"rendering page $i of 60: api/reference-$i.html\"; sleep 0.5; done"]},
  {"id": "e2e", "command": ["sh", "-c", "sleep 30"]},
  {"id": "test-unit", "command": ["sh", "-c", "sleep 5"], "blockedBy": ["build"]},
  {"id": "test-api", "command": ["sh", "-c", "sleep 5"], "blockedBy": ["build"]},
  {"id": "package", "command": ["sh", "-c", "sleep 1"], "blockedBy": ["test-unit", "test-api"]}
]}
TASKS
"$PE" serve --port 0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVER=$!
until [ -s "$WORK/serve.out" ]; do sleep 0.1; done
URL=$(sed -n '1s/^dashboard: //p' "$WORK/serve.out")
RUN_ID=$("$PY" - "$URL" "$WORK/tasks.json" <<'START'
import json, sys, urllib.request
base, token = sys.argv[1].split("/#token=")
body = json.dumps({"task_file": sys.argv[2], "options": {"max_parallel": 3}}).encode()
request = urllib.request.Request(f"{base}/api/runs", body, {"Authorization": f"Bearer {token}"})
print(json.load(urllib.request.urlopen(request))["run_id"])
START
)
sleep 4  # lint and typecheck have ended; build and docs have printed a few lines
# The page holds its event stream open: a virtual time budget lets its fetches land, then it is shot.
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$WORK/profile" --hide-scrollbars \
  --virtual-time-budget=3000 --timeout=15000 --screenshot="$ROOT/docs/dashboard.png" --window-size=1280,900 \
  "$URL&run=$RUN_ID" 2>/dev/null
echo "wrote $ROOT/docs/dashboard.png"
