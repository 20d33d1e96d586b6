#!/bin/sh
# Regenerates docs/timeline.png (the README's picture of `parallel-executor timeline --html`): runs a
# small task file with dependencies and a retried failure, then photographs its page with headless
# Chromium. The text chart of the same run goes to $TEXT (default /tmp/timeline-text.txt).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PE="$ROOT/.venv/bin/parallel-executor"
TEXT=${TEXT:-/tmp/timeline-text.txt}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export CLAUDE_CONFIG_DIR="$WORK/claude"
cat > "$WORK/tasks.json" <<'TASKS'
{"tasks": [
  {"id": "lint", "command": ["sh", "-c", "sleep 0.8"]},
  {"id": "build", "command": ["sh", "-c", "sleep 1.2"]},
  {"id": "test-unit", "command": ["sh", "-c", "sleep 1.0"], "blockedBy": ["build"]},
  {"id": "test-api", "command": ["sh", "-c", "sleep 0.7; exit 3"], "blockedBy": ["build"], "retries": 1},
  {"id": "docs", "command": ["sh", "-c", "sleep 0.6"]},
  {"id": "package", "command": ["sh", "-c", "sleep 0.5"], "blockedBy": ["test-unit"]}
]}
TASKS
# Twice: the first run gives the history the second one's speedup estimate needs. test-api fails:
# that is part of the picture.
"$PE" run "$WORK/tasks.json" -j 3 --quiet >/dev/null || true
"$PE" run "$WORK/tasks.json" -j 3 --quiet >/dev/null || true
COLUMNS=100 "$PE" timeline > "$TEXT"
"$PE" timeline --html "$WORK/timeline.html" >/dev/null
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$WORK/profile" --hide-scrollbars \
  --screenshot="$ROOT/docs/timeline.png" --window-size=1100,330 "file://$WORK/timeline.html" 2>/dev/null
echo "wrote $ROOT/docs/timeline.png and $TEXT"
