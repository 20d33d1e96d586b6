#!/usr/bin/env bash
# Worktree isolation, worked through without any AI account: command tasks edit one small
# repository in parallel, each in its own git worktree; their work is merged back into `main`.
# One pair (title-short, title-long) is made to conflict: the second merge is refused, its task
# fails naming README.md, and its worktree and branch are kept to finish by hand.
# Usage: examples/worktrees/run.sh [DIR]   (DIR: where to make the repository; default a temp dir)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${1:-$(mktemp -d)}"
pe="${PARALLEL_EXECUTOR:-$here/../../bin/parallel-executor.sh}"
export CLAUDE_CONFIG_DIR="$work/claude" XDG_STATE_HOME="$work/state"
mkdir -p "$work/shop/src"
cd "$work/shop"
git init -q -b main
git config user.name "Example" && git config user.email "example@localhost"
printf 'def total(items):\n    return sum(items)\n' > src/cart.py
printf 'def price(cents):\n    return cents / 100\n' > src/prices.py
touch src/__init__.py
printf '# shop\n' > README.md
printf '.env\n.env.local\n' > .gitignore
git add -A && git commit -q -m "the shop"
printf 'API_KEY=not-a-real-one\n' > .env  # untracked: copied into each worktree, never committed
cp "$here/tasks.json" "$work/tasks.json"
set +e
"$pe" run "$work/tasks.json" -j 6
code=$?
set -e
echo
echo "== main after the run (git log --graph):"
git log --graph --oneline --decorate=short main | cat
echo "== what is kept:"
"$pe" worktrees list
echo "(exit code $code: title-long failed on its merge conflict, as it should; see above how to finish it)"
echo "The repository: $work/shop"
