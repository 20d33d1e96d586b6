"""JSON text that json.dumps cannot write: nesting 2,000 deep, 10**5000 as digits, NaN, 1e999.

A document is built from plain values plus `Raw` pieces of text; `render` writes the plain part
with json.dumps(ensure_ascii=True) (so a lone surrogate becomes the valid escape "\\ud800") and
splices each Raw piece in where it stands. `compact` shows bytes as a short Python expression,
so a reproducer with 2,000 brackets stays readable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


@dataclass(frozen=True)
class Raw:
    """A piece of JSON text written as it is."""

    text: str

    def __repr__(self) -> str:
        return f"Raw({compact(self.text.encode())})"


def deep_list(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth)


def deep_object(depth: int) -> Raw:
    return Raw('{"a":' * depth + "1" + "}" * depth)


HUGE_INT = Raw("1" + "0" * 5000)  # 10**5000: more digits than int() converts by default
NUMBERS_PYTHON_ACCEPTS = [Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-1e999"), Raw("1E400"),
                          HUGE_INT, Raw("-" + "9" * 5000), Raw("0e-99999"), Raw("-0"), Raw("1" + "0" * 400)]


def depths() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(50, 120), st.integers(900, 1100), st.integers(1500, 2000))


def deep_values() -> st.SearchStrategy[Raw]:
    return st.builds(lambda kind, n: deep_list(n) if kind else deep_object(n), st.booleans(), depths())


def render(doc: Any, indent: int | None = None) -> str:
    raws: list[Raw] = []

    def mark(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value)
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {(k if isinstance(k, str) else str(k)): mark(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(doc), ensure_ascii=True, indent=indent, allow_nan=True)
    return re.sub(r'"@@RAW(\d+)@@"', lambda m: raws[int(m.group(1))].text, text)


def encode(text: str, how: str) -> bytes:
    """The text as a file: UTF-8 (strict: ensure_ascii made it ASCII) or another encoding."""
    if how == "utf-8":
        return text.encode("utf-8", "surrogatepass")
    if how == "utf-8-bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    return text.encode(how, "surrogatepass")


def compact(data: bytes) -> str:
    """A Python expression for data, with long runs of a repeated unit written as `b'[' * 2000`."""
    parts: list[str] = []
    i, literal = 0, bytearray()
    while i < len(data):
        unit, count = _run_at(data, i)
        if count * len(unit) >= 40:
            if literal:
                parts.append(repr(bytes(literal)))
                literal.clear()
            parts.append(f"{bytes(unit)!r} * {count}")
            i += count * len(unit)
        else:
            literal.append(data[i])
            i += 1
    if literal or not parts:
        parts.append(repr(bytes(literal)))
    return " + ".join(parts)


def _run_at(data: bytes, i: int) -> tuple[bytes, int]:
    best = (data[i:i + 1], 1)
    for size in range(1, 9):
        unit = data[i:i + size]
        if len(unit) < size:
            break
        count = 1
        while data[i + count * size:i + (count + 1) * size] == unit:
            count += 1
        if count * size > best[1] * len(best[0]) and count > 1:
            best = (unit, count)
    return best


ENCODING_DAMAGE = ["truncated", "empty", "blank", "utf-16", "utf-16-le", "utf-32", "utf-8-bom", "bad-byte",
                   "torn-character", "nul-byte", "trailing-garbage", "two-documents", "comment", "crlf", "latin-1",
                   "top-level-deep"]


@st.composite
def damaged(draw: st.DrawFn, text: str, intact_share: int = 70) -> tuple[bytes, str]:
    """The file holding text: intact (intact_share %), or damaged on its way to disk. Returns (bytes, how)."""
    if draw(st.integers(0, 99)) < intact_share:
        return encode(text, "utf-8"), "intact"
    how = draw(st.sampled_from(ENCODING_DAMAGE))
    data = encode(text, "utf-8")
    if how == "truncated":  # a torn write: a valid file cut at a random byte
        return data[:draw(st.integers(0, max(0, len(data) - 1)))], how
    if how == "empty":
        return b"", how
    if how == "blank":
        return b" \n\t\n", how
    if how in ("utf-16", "utf-16-le", "utf-32"):
        return text.encode(how, "surrogatepass"), how
    if how == "utf-8-bom":
        return encode(text, how), how
    if how == "bad-byte":
        at = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xfe\xff"]))
        return data[:at] + bad + data[at:], how
    if how == "torn-character":  # "...\u00e9" cut inside the character, e.g. a string value
        return data.rstrip(b"]}\n ").rstrip(b'"') + "\u00e9\u20ac".encode()[:draw(st.integers(1, 4))], how
    if how == "nul-byte":
        at = draw(st.integers(0, len(data)))
        return data[:at] + b"\x00" + data[at:], how
    if how == "trailing-garbage":
        return data + draw(st.sampled_from([b"}", b"]", b"x", b",", b"\x00"])), how
    if how == "two-documents":
        return data + b"\n" + data, how
    if how == "comment":
        return b"// a comment\n" + data, how
    if how == "crlf":
        return data.replace(b"\n", b"\r\n") + b"\r\n", how
    if how == "latin-1":
        return data.replace(b'"', b'"\xe9', 1), how
    assert how == "top-level-deep"
    deep = draw(deep_values())
    return deep.text.encode(), how
