"""The JSON Schemas shipped under config/schemas, and readable messages for their errors.

A valid document is checked by the schema compiled to code (fastjsonschema, fast); jsonschema,
slower to import and to run, is loaded only to explain every error of an invalid one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import re
import sys
from collections.abc import Collection
from functools import cache
from typing import TYPE_CHECKING, Any

import fastjsonschema

from parallel_executor.plan.advice import did_you_mean
from parallel_executor.system.fsutil import private_dir, write_atomic
from parallel_executor.system.locations import SHIPPED_CONFIG_DIR, temp_dir

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_DIR = SHIPPED_CONFIG_DIR / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    with open(SCHEMA_DIR / f"{name}.schema.json", encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


@cache
def validator(name: str, definition: str | None = None) -> Draft202012Validator:
    """A validator for a whole schema, or for one of its `$defs` (so errors stay local)."""
    from referencing import Registry, Resource

    strict = _strict_validator_class()
    schema = load_schema(name)
    if definition is None:
        return strict(schema)  # type: ignore[no-any-return]
    registry: Registry[Any] = Registry().with_resource(schema["$id"], Resource.from_contents(schema))
    return strict({"$ref": f"{schema['$id']}#/$defs/{definition}"}, registry=registry)  # type: ignore[no-any-return]


# JSON Schema patterns are ECMA-262, where `$` ends the text; in Python's re, `$` also matches before
# a final newline, so "x\n" would pass '^x$'. fastjsonschema turns `$` into `\Z`; jsonschema must too,
# or the two would disagree (and an id "x\n" slip through).
_DOLLAR = re.compile(r"(?<!\\)\$")


@cache
def _full_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(_DOLLAR.sub(r"\\Z", pattern))


@cache
def _strict_validator_class() -> Any:
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Any, value: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not _full_pattern(value).search(instance):
            yield ValidationError(f"{instance!r} does not match {value!r}")

    return validators.extend(Draft202012Validator, {"pattern": pattern})  # type: ignore[no-untyped-call]


@cache
def _compiled(name: str) -> Any:
    """The schema as a Python function; its code is cached, since generating it costs a start-up."""
    source = (SCHEMA_DIR / f"{name}.schema.json").read_bytes()
    key = hashlib.sha256(source + f"{fastjsonschema.VERSION} {sys.version}".encode()).hexdigest()[:16]
    cache = temp_dir() / "schema-cache" / f"{name}-{key}.marshal"
    try:
        entry, code = marshal.loads(cache.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        text = fastjsonschema.compile_to_code(json.loads(source))
        entry = re.search(r"^def (\w+)\(", text, re.MULTILINE).group(1)  # type: ignore[union-attr]
        code = compile(text, f"<{name} schema>", "exec")
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
            write_atomic(private_dir(cache.parent) / cache.name, marshal.dumps((entry, code)))
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace[entry]


def is_valid(name: str, document: Any) -> bool:
    """Fast yes/no (the schema compiled to code); jsonschema then explains a no, every error of it."""
    try:
        _compiled(name)(document)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


NEEDS_ONE_RUNNABLE = "needs exactly one of 'prompt' or 'command'"


def describe(error: ValidationError) -> str:
    """One short sentence for a schema error, without jsonschema's dump of the schema."""
    # The task schema's if/then/else for prompt-or-command fails as a false schema or a missing prompt.
    if error.validator is None or (error.validator == "required" and error.validator_value == ["prompt"]):
        return NEEDS_ONE_RUNNABLE
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(k for k in error.instance if k not in allowed)
        return "unknown field " + _unknown_fields(extra, allowed)
    if error.validator == "required":
        return str(error.message).replace(" is a required property", " is required")
    shown = short_repr(error.instance)
    if error.validator == "pattern":
        return f"{shown} does not match {error.validator_value}"
    if error.validator == "enum":
        choices = error.validator_value if isinstance(error.validator_value, list) else []
        return f"{shown} is not one of " + ", ".join(map(repr, choices))
    if error.validator in ("minLength", "minItems"):
        return f"{shown} is empty"
    if error.validator == "oneOf":
        about = error.schema.get("description") if isinstance(error.schema, dict) else None
        if not (isinstance(about, str) and about):
            return f"{shown} has the wrong type or form"
        return f"{shown} has the wrong type or form (expected: {about[:1].lower()}{about[1:].rstrip('.')})"
    message = str(error.message)
    whole = repr(error.instance)
    return message.replace(whole, shown) if len(whole) > len(shown) else message


def _unknown_fields(extra: list[Any], known: Collection[str]) -> str:
    """'blockedby'; did you mean 'blockedBy'? -- or, for several: 'a' (did you mean 'b'?), 'c'."""
    close = [did_you_mean(k, known) if isinstance(k, str) else None for k in extra]
    if len(extra) == 1:
        return short_repr(extra[0]) + (f"; did you mean {close[0]!r}?" if close[0] else "")
    hints = [f" (did you mean {c!r}?)" if c else "" for c in close]
    return ", ".join(short_repr(k) + hint for k, hint in zip(extra, hints, strict=True))


def short_repr(value: Any, width: int = 60) -> str:
    """repr(value), cut to about `width` characters: a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
