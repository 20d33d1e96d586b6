"""One defensive way to read every JSON file the engine is given or keeps (§3, §4).

`parse` is strict JSON: no NaN or Infinity (nor a number so large it becomes one), no number of
more digits than Python converts, no nesting deeper than MAX_DEPTH; each is a BadJSON with
a message, never a RecursionError or a bare ValueError. `read_text` reads UTF-8 only, naming a
UTF-16 or UTF-32 byte order mark. `read_state` reads one of the engine's own state files: the
document if it has the expected shape, the default if the file is missing, and otherwise the
file is moved aside as `<name>.corrupt-<timestamp>` with a one-line warning — never silently
replaced, never a crash.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from parallel_executor.system.fsutil import free_name

T = TypeVar("T")
MAX_BYTES = 256 << 20  # a 10,000-task file is ~2 MB; /dev/zero must not be read forever
MAX_DEPTH = 100  # far beyond any file of ours, far below Python's recursion limit
_SUSPECT = re.compile(r"(?<!\\)(?:\\\\)*\\u(?:0000|[dD][89a-fA-F])")  # how a NUL or a surrogate is written
_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


class BadJSON(ValueError):
    """Text that is not JSON the engine accepts; `where` is "LINE:COLUMN" when known."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message, self.where = message, where


def _no_constant(name: str) -> Any:
    raise BadJSON(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJSON(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large")
    return value


def parse(text: str) -> Any:
    try:
        doc = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise BadJSON(e.msg, f"{e.lineno}:{e.colno}") from None
    except RecursionError:
        raise BadJSON(f"nested more than {MAX_DEPTH} levels deep") from None
    except BadJSON:
        raise
    except ValueError as e:  # an integer of more digits than int() converts
        raise BadJSON(f"a number is too long ({str(e).split(':')[0]})") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth_over(doc, MAX_DEPTH):  # counting is cheap
        raise BadJSON(f"nested more than {MAX_DEPTH} levels deep")
    return doc


def _depth_over(doc: Any, limit: int) -> bool:
    """Is any value nested more than `limit` containers deep? Iterative: depth cannot hurt it."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False


def read_text(path: Path | str) -> str:
    """The file as UTF-8 text (an optional UTF-8 BOM is dropped). Raises OSError or BadJSON."""
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise BadJSON(f"larger than {MAX_BYTES >> 20} MiB")
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            raise BadJSON(f"is {name} text; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadJSON(f"not UTF-8 text (byte {e.start})") from None


def read_json(path: Path | str) -> Any:
    return parse(read_text(path))


def read_state(path: Path, valid: Callable[[Any], bool], default: Callable[[], T]) -> T:
    """The state file at path if it holds a document of the right shape; else default(). An OSError
    other than a directory in the file's place (no permission, a file where a folder belongs) is the
    environment's problem, not the file's: it is raised, for the command to report."""
    try:
        text = read_text(path)
        doc = parse(text)
    except FileNotFoundError:
        return default()
    except IsADirectoryError:
        why = "a directory stands where the file belongs"
    except BadJSON as e:
        why = e.message
    else:
        if may_hold_bad_text(text) and any(bad_text(s) for _, s, _ in strings(doc)):
            why = "it holds a NUL or a lone surrogate, which this engine never writes"
        elif valid(doc):
            return doc  # type: ignore[no-any-return]
        else:
            why = "not the shape this version writes"
    set_aside(path, why)
    return default()


def may_hold_bad_text(text: str) -> bool:
    """Could the document parsed from `text` hold a NUL or a lone surrogate? In UTF-8 JSON only a
    \\u escape can write one: most texts have none, and need no walk."""
    return "\\u" in text and _SUSPECT.search(text) is not None


def bad_text(text: str) -> str:
    """Why no argv, path, environment or UTF-8 file can carry `text` ("" when one can)."""
    if "\x00" in text:
        return "holds a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (not valid Unicode)"
    return ""


def strings(doc: Any, where: str = "") -> Iterator[tuple[str, str, bool]]:
    """Every string of doc, map keys included: (field path like 'command.0', text, is a key).
    Iterative, so no depth can hurt it."""
    stack = [(doc, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            yield path, item, False
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str):
                    yield path, key, True
                stack.append((child, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{n}" if path else str(n)) for n, child in enumerate(item))


def unreadable(label: str, error: OSError | BadJSON, kind: str) -> str:
    """One line for a file of `kind` ("task file", "config file") that cannot be read; `label` names it."""
    if isinstance(error, BadJSON):
        return f"{label}:{error.where}: invalid JSON: {error.message}" if error.where else f"{label}: {error.message}"
    if isinstance(error, FileNotFoundError):
        return f"{label}: no such file"
    if isinstance(error, IsADirectoryError):
        return f"{label}: is a directory, not a {kind}"
    return f"{label}: {error.strerror or error}"


def set_aside(path: Path, why: str) -> Path:
    """Move an unusable file (or directory) out of the way, saying so on stderr."""
    target = free_name(path, "corrupt")
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return target  # another process moved it aside (or replaced it) meanwhile
    print(f"parallel-executor: warning: {path} could not be used ({why}); moved aside to {target.name}",
          file=sys.stderr)
    return target
