"""Config files (PRODUCT §3, §3.1): random subsets of the shipped keys, with wrong values.

A config may hold any subset of the keys (nested maps merge key by key); `subset` values are
taken from the shipped config itself, so a file made only of them must be accepted. Anything
else must be accepted or be a clear error (exit 2) naming the key: never a traceback.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.fuzzing.jsontext import NUMBERS_PYTHON_ACCEPTS, Raw, compact, damaged, deep_values, render
from tests.fuzzing.taskfiles import WRONG

SHIPPED: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "config" / "parallel-execution-config.json").read_text())
SIZES: list[Any] = ["1TB", "1TiB", "9" * 400 + "MB", "9" * 5000, "1e3MB", "-256MB", "256 MB", "256mb", "0.5KiB",
                    "1.5", "MB", "", " 1 GB ", "256MBB", "256XB", "\u0661\u0662MB", "0", "0B", "1" + "0" * 30,
                    10**30, -1, 0, 1.5, "1.0000000000000000000001GB", "256M B", "\x00"]
SIZE_KEYS = {"memory_per_agent", "memory_reserve", "memory_limit_per_agent"}
NESTED_WRONG: dict[str, list[Any]] = {
    "runners": [{"claude": {"command": []}}, {"claude": {"command": "claude"}}, {"claude": {"command": [1]}},
                {"claude": {"command": [""]}}, {"claude": {"output": "nope"}}, {"x": {}}, {"x": {"command": ["true"]}},
                {"claude": None}, {"claude": {"command": ["\x00"]}}, {"": {"command": ["x"]}},
                {"claude": {"model_args": "--model"}}, {"claude": {"command": ["claude", "{nope}"]}}],
    "phases": [[{"name": 1}], [{}], [{"name": "x", "parallel": "yes"}], [{"name": ""}], ["architecture"],
               [{"name": "implementation"}] * 2, [{"name": "a", "extra": 1}], []],
    "never_together": [[["a"]], [["a", "b", "c"]], ["ab"], [[1, 2]], [["*", "*"]]],
    "exclusive_subagents": [[1], "x", [None], [""]],
    "temp_resources": [{"keep_min_uses": "x"}, {"keep_min_uses": Raw("NaN")}, {"delete_unused_days": -1},
                       {"unknown": 1}, {"keep_recent_days": Raw("1e999")}],
    "monitoring": [{"refresh_interval": 0}, {"refresh_interval": -1}, {"refresh_interval": Raw("NaN")},
                   {"refresh_interval": Raw("1e999")}, {"refresh_interval": "2"}, {"refresh": 1}],
    "merge_strategies": [{"testing": "nope"}, {"testing": 5}, {"": "default"}, {"testing": None}],
}
INTEGRAL_FLOATS = [1.0, 2.0, 5.0, 1e3, 1e308]


class ConfigFile:
    """The bytes of a config file; `surely_valid`: only shipped values, written intact, so it must be accepted."""

    def __init__(self, data: bytes, how: str, surely_valid: bool) -> None:
        self.data, self.how, self.surely_valid = data, how, surely_valid

    def __repr__(self) -> str:
        return f"ConfigFile({compact(self.data)}, how={self.how!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # what Hypothesis prints
        printer.text(repr(self))


def _value(draw: st.DrawFn, key: str) -> tuple[Any, str]:
    kind = draw(st.sampled_from(["shipped", "shipped", "subset", "wrong", "wrong", "nested", "size", "number", "deep"]))
    shipped = SHIPPED[key]
    if kind == "shipped":
        return copy.deepcopy(shipped), "shipped"
    if kind == "subset" and isinstance(shipped, dict) and shipped:
        keep = draw(st.lists(st.sampled_from(sorted(shipped)), unique=True, min_size=1))
        return {k: copy.deepcopy(shipped[k]) for k in keep}, "subset"
    if kind == "nested" and key in NESTED_WRONG:
        return draw(st.sampled_from(NESTED_WRONG[key])), "nested"
    if kind == "size" or (kind == "nested" and key in SIZE_KEYS):
        return draw(st.sampled_from(SIZES)), "size"
    if kind == "number":
        return draw(st.sampled_from([*NUMBERS_PYTHON_ACCEPTS, *INTEGRAL_FLOATS, 10**20, -(10**20), 0, -1])), "number"
    if kind == "deep":
        return draw(deep_values()), "deep"
    return draw(st.sampled_from(WRONG)), "wrong"


@st.composite
def config_files(draw: st.DrawFn) -> ConfigFile:
    keys = draw(st.lists(st.sampled_from(sorted(SHIPPED)), unique=True, max_size=6))
    doc: dict[str, Any] = {}
    kinds = []
    for key in keys:
        doc[key], kind = _value(draw, key)
        kinds.append(f"{key}={kind}")
    if draw(st.integers(0, 9)) == 0:
        doc[draw(st.sampled_from(["max_concurent", "", "\ud800", "runner"]))] = 1
        kinds.append("unknown key")
    top: Any = doc
    if draw(st.integers(0, 14)) == 0:
        top = draw(st.sampled_from([[], "x", 1, None, [doc]]))
        kinds.append("not an object")
    text = render(top, indent=draw(st.sampled_from([None, 2])))
    data, how = draw(damaged(text))
    surely_valid = how == "intact" and top is doc and all(k.endswith(("=shipped", "=subset")) for k in kinds)
    return ConfigFile(data, ", ".join([*kinds, how]) or "empty object", surely_valid)
