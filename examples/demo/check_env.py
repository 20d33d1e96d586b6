"""The demo's setup task: make sure the tools the test tasks need are here."""

import importlib.util
import sys

if importlib.util.find_spec("pytest") is None:
    sys.exit("pytest is missing: run `make demo` from the repository root")
print(f"python {sys.version.split()[0]} with pytest: ready")
