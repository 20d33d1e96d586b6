#!/usr/bin/env bash
# What cron runs (`parallel-executor cron install`): the temporary skills/agents cleanup,
# appended to memory/logs/temp-resource-cleanup.log.
set -uo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_python.sh"
logs="${CLAUDE_CONFIG_DIR:-$HOME/.claude}/memory/logs"
mkdir -p "$logs"
{
  echo "== $(date -Iseconds) cleanup"
  "$py" -m parallel_executor cleanup "$@"
  echo "== exit $?"
} >> "$logs/temp-resource-cleanup.log" 2>&1
