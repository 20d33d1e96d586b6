# Quick start: `make demo` runs a real example, `make test` runs every test.
# Both create .venv/ and install what they need; nothing has to be installed by hand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test browser fuzz lint bench clean install uninstall install-hooks

# `make install`: the package in a venv of its own under $(CLAUDE_CONFIG_DIR)/memory, with bin/,
# config/, the policy documents and the /parallel-execute slash command (README "Install").
CLAUDE_CONFIG_DIR ?= $(HOME)/.claude
INSTALLER := PYTHONPATH="$(CURDIR)/scripts" CLAUDE_CONFIG_DIR="$(CLAUDE_CONFIG_DIR)" \
	$(PYTHON) -m parallel_executor.claude.install

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint,dask,server]'
	touch $(STAMP)

demo: $(STAMP)
	cd examples/demo && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CLAUDE_CONFIG_DIR="$(CURDIR)/examples/demo/.claude" \
		../../bin/parallel-executor.sh tasks.json -j 4
	@echo "The report task's output (parallel-executor logs report):"
	@cd examples/demo && CLAUDE_CONFIG_DIR="$(CURDIR)/examples/demo/.claude" $(CURDIR)/$(VENV)/bin/parallel-executor logs report
	@echo "The command: $(CURDIR)/$(VENV)/bin/parallel-executor (or $(CURDIR)/bin/parallel-executor), e.g." \
		"CLAUDE_CONFIG_DIR=$(CURDIR)/examples/demo/.claude $(VENV)/bin/parallel-executor history"

install:
	$(INSTALLER) install --python "$(PYTHON)"

uninstall:
	$(INSTALLER) uninstall

install-hooks:
	CLAUDE_CONFIG_DIR="$(CLAUDE_CONFIG_DIR)" "$(CLAUDE_CONFIG_DIR)/memory/bin/parallel-executor" hooks install

test: $(STAMP) browser
	$(PY) -m pytest -q

# The timeline tests open its HTML page in a real headless Chromium (Debian's `chromium` package).
# The package index is refreshed only when the install cannot find the package without it.
APT_CHROMIUM := apt-get install -y -qq --no-install-recommends chromium >/dev/null
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
		{ $(APT_CHROMIUM) || { apt-get update -qq && $(APT_CHROMIUM); }; }; } || \
		{ echo "make: chromium is missing; install it as root: apt-get install -y --no-install-recommends chromium" >&2; \
		  exit 1; }

# The fuzz suite's long profile: 10,000 task files, 3,000 state-file and 1,000 config scenarios.
fuzz: $(STAMP)
	PE_FUZZ=long $(PY) -m pytest -q -s tests/fuzz_test.py

lint: $(STAMP)
	$(VENV)/bin/ruff check scripts tests benchmarks
	$(VENV)/bin/mypy --strict scripts/parallel_executor

bench: $(STAMP)
	$(PY) benchmarks/analyze.py
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/makespan.py
	$(PY) benchmarks/ratelimit.py
	$(PY) benchmarks/worktrees.py
	$(PY) benchmarks/server.py

clean:
	rm -rf $(VENV) build *.egg-info examples/demo/.claude
