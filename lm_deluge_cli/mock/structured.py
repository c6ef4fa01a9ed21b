"""Deterministic JSON values for a JSON Schema: the mock provider's structured outputs.

`instance(schema, prompt)` builds a value that matches `schema`. Its strings are made of
the prompt's words; its numbers, lengths and choices come from a digest of the prompt and
of the value's place in the document, so one prompt always gets the same value and another
prompt (almost always) another. `violating_instance` builds one that breaks one rule.

Honoured: ``type`` (one or a list, also Gemini's upper-case names), ``properties``,
``required``, ``additionalProperties``, ``minProperties``, ``items`` (one schema, or the
older list form), ``prefixItems``, ``minItems``/``maxItems``, ``uniqueItems`` (best effort),
``enum``, ``const``, ``anyOf``/``oneOf`` (the first branch), ``allOf`` (merged), ``$ref``
into the same document (``$defs``, ``definitions``, any JSON pointer), ``minLength``/
``maxLength``, ``minimum``/``maximum``, ``exclusiveMinimum``/``exclusiveMaximum`` (numbers,
or draft 4's booleans), ``multipleOf``, ``format`` (date, date-time, time, duration, email,
hostname, uri/url, uuid, ipv4, ipv6) and ``pattern`` when it is simple: literals, classes,
``\\d \\w \\s .``, groups with ``|`` and quantifiers. A pattern beyond that (look-arounds,
back-references, negated classes) gets words, which may not match it. Nesting deeper than
`MAX_DEPTH` keeps only what is required, so recursive schemas end. ``not``, ``if``/``then``,
``patternProperties`` and ``dependent*`` are ignored.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from lm_deluge_cli.mock.formats.base import ChatRequest
from lm_deluge_cli.mock.patterns import pattern_string
from lm_deluge_cli.mock.wire import WORDS, prompt_text
from lm_deluge_cli.schema import resolve_pointer, violation

__all__ = [
    "JSON_MODE_SCHEMA",
    "MAX_DEPTH",
    "asks_for_json",
    "instance",
    "json_reply",
    "prompted_json_reply",
    "prompted_schema",
    "requested_schema",
    "violating_instance",
]

# Nesting beyond which objects keep only required properties and arrays their minimum.
MAX_DEPTH = 6
# Past this even required parts stop: a schema that requires itself has no finite instance.
_HARD_DEPTH = 24
# What JSON mode (an object, no schema) is answered with.
JSON_MODE_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "words": {"type": "array", "items": {}}},
    "required": ["answer", "words"],
}
# What breaking JSON mode means: any value that is not an object.
_ANY_OBJECT: Mapping[str, Any] = {"type": "object"}
# A system prompt that carries its schema: "… matches this JSON schema: {…}".
_PROMPTED_SCHEMA = re.compile(r"json\s+schema", re.IGNORECASE)
# A system prompt that asks for JSON without one: "Answer with one valid JSON object …".
_PROMPTED_JSON = re.compile(
    r"\b(?:answer|respond|reply|return|output)\b[^.\n]*\bJSON\b", re.IGNORECASE
)
_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_WORD = re.compile(r"[^\W_]+")
# Values of other types, tried in turn for one the schema refuses.
_WRONG_VALUES: tuple[Any, ...] = ("not valid here", 1.5, 7, True, None, [], {})
_NOTHING = object()


def instance(schema: Any, prompt: str = "") -> Any:
    """A JSON value that matches `schema`, made from `prompt` (the same prompt, the same
    value)."""
    return _Maker(schema, prompt).value(schema, "$", 0)


def violating_instance(schema: Any, prompt: str = "") -> Any:
    """A JSON value that breaks one rule of `schema`: an object's first required property
    left out, else a property it does not allow added, else a property of the wrong type,
    else the whole value of the wrong type. A schema that every value matches cannot be
    broken: it gets its `instance`."""
    maker = _Maker(schema, prompt)
    good = maker.value(schema, "$", 0)
    root = maker.resolve(schema)
    if isinstance(good, dict) and isinstance(root, Mapping):
        required = [name for name in root.get("required") or () if name in good]
        if required:
            return {name: value for name, value in good.items() if name != required[0]}
        properties = _mapping(root.get("properties"))
        if root.get("additionalProperties") is False:
            extra = "unexpected"
            while extra in properties:
                extra += "_"
            return {**good, extra: maker.word("$.unexpected", 0)}
        for name in good:
            wrong = _wrong_value(maker.resolve(properties.get(name, {})))
            if wrong is not _NOTHING:
                return {**good, name: wrong}
    wrong = _wrong_value(root)
    return good if wrong is _NOTHING else wrong


def requested_schema(request: ChatRequest) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """(the schema an answer fills, the schema a broken answer breaks) for a request that
    asks for JSON, else None.

    A request asks for JSON with its format's own field (``ChatRequest.schema``, or
    ``json_object`` for JSON mode), or, as a model would read it, in its system prompt: a
    JSON schema written after the words "JSON schema", or words that ask to answer in JSON.
    """
    if request.schema is not None:
        return request.schema, request.schema
    if request.json_object:
        return JSON_MODE_SCHEMA, _ANY_OBJECT
    return prompted_schema(request.messages)


def prompted_schema(
    messages: list[dict[str, Any]],
) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """`requested_schema` of a request that asks for JSON, if at all, only in its system
    prompt (or developer messages)."""
    system = prompt_text(messages, ("system", "developer"))
    # Both patterns need "json", whose letters are matched case-insensitively only by
    # letters that fold to them: most instructions never say it, and are not searched.
    if "json" not in system.casefold():
        return None
    match = _PROMPTED_SCHEMA.search(system)
    if match is not None:
        start = system.find("{", match.end())
        try:
            schema, _ = json.JSONDecoder().raw_decode(system, start) if start >= 0 else (None, 0)
        except ValueError:
            schema = None
        if isinstance(schema, dict):
            return schema, schema
    if _PROMPTED_JSON.search(system):
        return JSON_MODE_SCHEMA, _ANY_OBJECT
    return None


def asks_for_json(request: ChatRequest) -> bool:
    """Whether the request asks for a JSON answer (see `requested_schema`)."""
    return requested_schema(request) is not None


def json_reply(request: ChatRequest, *, violate: bool = False, variant: int = 0) -> str | None:
    """The JSON text that answers `request` (one that breaks its schema when `violate`),
    or None when it asks for no JSON. Values come from the user's words; each `variant`
    above 0 is another answer (several samples of one prompt)."""
    return _json_text(requested_schema(request), request.messages, violate, variant)


def prompted_json_reply(messages: list[dict[str, Any]]) -> str | None:
    """`json_reply` of a request that asks for JSON, if at all, only in its system prompt."""
    asked = prompted_schema(messages)
    return None if asked is None else _json_text(asked, messages, False, 0)


def _json_text(
    asked: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
    messages: list[dict[str, Any]],
    violate: bool,
    variant: int,
) -> str | None:
    if asked is None:
        return None
    fill, breaking = asked
    prompt = prompt_text(messages, ("user",))
    if variant:
        prompt += f"\x00sample {variant}"
    value = violating_instance(breaking, prompt) if violate else instance(fill, prompt)
    return orjson.dumps(value).decode()


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _wrong_value(schema: Any) -> Any:
    """A value `schema` refuses, or `_NOTHING`."""
    for candidate in _WRONG_VALUES:
        if violation(candidate, schema) is not None:
            return candidate
    return _NOTHING


class _Maker:
    """Builds values for one document (`root`, where ``$ref`` points) and one prompt."""

    def __init__(self, root: Any, prompt: str) -> None:
        self.root = root
        self.key = hashlib.blake2b(prompt.encode(), digest_size=32).digest()
        self.words: tuple[str, ...] = tuple(_WORD.findall(prompt)) or WORDS
        ascii_words = tuple(w.lower() for w in self.words if w.isascii() and w.isalnum())
        self.ascii_words: tuple[str, ...] = ascii_words or WORDS

    def draw(self, path: str, salt: str = "") -> int:
        """A number from the prompt and a place in the document."""
        digest = hashlib.blake2b(f"{path}|{salt}".encode(), key=self.key, digest_size=8)
        return int.from_bytes(digest.digest(), "big")

    def word(self, path: str, i: int) -> str:
        return self.words[self.draw(path, f"word{i}") % len(self.words)]

    def ascii_word(self, path: str, i: int) -> str:
        return self.ascii_words[self.draw(path, f"ascii{i}") % len(self.ascii_words)]

    # --- schemas -------------------------------------------------------------------------

    def resolve(self, schema: Any) -> Any:
        """`schema` with its ``$ref`` followed and its ``allOf`` merged in."""
        for _ in range(32):  # a loop of refs ends somewhere
            if not isinstance(schema, Mapping) or not isinstance(schema.get("$ref"), str):
                break
            target = self.pointer(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if isinstance(target, Mapping) else target
        if isinstance(schema, Mapping) and isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self.resolve(part))
            schema = merged
        return schema

    def pointer(self, ref: str) -> Any:
        """What a ``#/…`` reference names in the root; {} (anything) when it names nothing."""
        if not ref.startswith("#"):
            return {}
        return resolve_pointer(self.root, ref, default={})

    def kind(self, schema: Mapping[str, Any]) -> str:
        """The type to build: the schema's first (non-null, if it has another), else one its
        keywords imply."""
        declared = schema.get("type")
        names = declared if isinstance(declared, list) else [declared]
        kinds = [n.lower() for n in names if isinstance(n, str) and n.lower() in _TYPES]
        if kinds:
            others = [k for k in kinds if k != "null"]
            return others[0] if others else "null"
        keys = schema.keys()
        if keys & {"properties", "required", "additionalProperties", "minProperties"}:
            return "object"
        if keys & {"items", "prefixItems", "minItems", "maxItems", "uniqueItems"}:
            return "array"
        if keys & {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}:
            return "number"
        return "string"

    # --- values --------------------------------------------------------------------------

    def value(self, schema: Any, path: str, depth: int) -> Any:
        schema = self.resolve(schema)
        if not isinstance(schema, Mapping):
            return self.word(path, 0)  # true, or junk: anything goes
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self.choose(enum, schema, path)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                rest = {k: v for k, v in schema.items() if k != key}
                branch = self.resolve(self.branch(options, depth))
                merged = {**rest, **branch} if isinstance(branch, Mapping) else branch
                return self.value(merged, path, depth)
        build: dict[str, Callable[[Mapping[str, Any], str, int], Any]] = {
            "object": self.object,
            "array": self.array,
            "string": lambda s, p, d: self.string(s, p),
            "integer": lambda s, p, d: self.number(s, p, integer=True),
            "number": lambda s, p, d: self.number(s, p, integer=False),
            "boolean": lambda s, p, d: self.draw(p, "bool") % 2 == 0,
            "null": lambda s, p, d: None,
        }
        return build[self.kind(schema)](schema, path, depth)

    def branch(self, options: list[Any], depth: int) -> Any:
        """The first branch; deep down, the first that does not lead further down."""
        if depth >= MAX_DEPTH:
            for option in options:
                leaf = isinstance(option, Mapping) and "$ref" not in option
                if leaf and self.kind(option) not in ("object", "array"):
                    return option
        return options[0]

    def choose(self, values: list[Any], schema: Mapping[str, Any], path: str) -> Any:
        """One of `values` (an enum) that the rest of the schema also allows."""
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const")}
        start = self.draw(path, "enum") % len(values)
        for offset in range(len(values)):
            candidate = values[(start + offset) % len(values)]
            if violation(candidate, rest) is None:
                return candidate
        return values[start]

    def object(self, schema: Mapping[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties = _mapping(schema.get("properties"))
        required = [n for n in schema.get("required") or () if isinstance(n, str)]
        extra = schema.get("additionalProperties")
        extra_schema = extra if isinstance(extra, Mapping) else {}
        names = list(properties) if depth < MAX_DEPTH else [n for n in properties if n in required]
        if depth >= _HARD_DEPTH:
            return {}
        out: dict[str, Any] = {}
        for name in names:
            out[name] = self.value(properties[name], f"{path}.{name}", depth + 1)
        for name in required:
            if name not in out:
                out[name] = self.value(extra_schema, f"{path}.{name}", depth + 1)
        least = schema.get("minProperties")
        if isinstance(least, int) and extra is not False:
            i = 0
            while len(out) < least:
                name = f"{self.ascii_word(path, i)}_{i}"
                if name not in out:
                    out[name] = self.value(extra_schema, f"{path}.{name}", depth + 1)
                i += 1
        return out

    def array(self, schema: Mapping[str, Any], path: str, depth: int) -> list[Any]:
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if isinstance(items, list):  # draft 4's tuple form
            prefix, items = items, schema.get("additionalItems")
        prefix = prefix if isinstance(prefix, list) else []
        least = schema.get("minItems")
        most = schema.get("maxItems")
        least = least if isinstance(least, int) and least > 0 else 0
        count = least if depth >= MAX_DEPTH else max(least, 1 + self.draw(path, "count") % 3)
        if isinstance(most, int) and most >= 0:
            count = min(count, most)
        if items is False:
            count = min(count, len(prefix))
        if depth >= _HARD_DEPTH:
            count = 0
        unique = schema.get("uniqueItems") is True
        out: list[Any] = []
        for i in range(count):
            item_schema = prefix[i] if i < len(prefix) else items
            item_schema = item_schema if item_schema is not None else {}
            value = self.value(item_schema, f"{path}[{i}]", depth + 1)
            for retry in range(8):
                if not unique or value not in out:
                    break
                value = self.value(item_schema, f"{path}[{i}]#{retry}", depth + 1)
            out.append(value)
        return out

    def string(self, schema: Mapping[str, Any], path: str) -> str:
        text: str | None = None
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            text = pattern_string(pattern, lambda salt: self.draw(path, salt))
        fmt = schema.get("format")
        if text is None and isinstance(fmt, str) and fmt in _FORMATS:
            text = _FORMATS[fmt](self, path)
        if text is None:
            count = 1 + self.draw(path, "words") % 3
            text = " ".join(self.word(path, i) for i in range(count))
        least, most = schema.get("minLength"), schema.get("maxLength")
        i = 0
        while isinstance(least, int) and len(text) < least:
            text += " " + self.word(path, 100 + i)
            i += 1
        if isinstance(most, int) and most >= 0 and len(text) > most:
            text = text[:most]
        return text

    def number(self, schema: Mapping[str, Any], path: str, *, integer: bool) -> int | float:
        low, low_open = _bound(schema, "minimum", "exclusiveMinimum", max)
        high, high_open = _bound(schema, "maximum", "exclusiveMaximum", min)
        if low is None and high is None:
            low, high = 0.0, 1000.0
        elif low is None:
            assert high is not None
            low = high - 1000.0
        elif high is None:
            high = low + 1000.0
        step = schema.get("multipleOf")
        if isinstance(step, bool) or not isinstance(step, int | float) or step <= 0:
            step = 1 if integer else None
        elif integer and not float(step).is_integer():
            step = 1  # a fractional step: its integer multiples are still integers
        draw = self.draw(path, "number")
        if step is not None:
            first = math.ceil(low / step) + (1 if low_open and (low / step).is_integer() else 0)
            last = math.floor(high / step) - (1 if high_open and (high / step).is_integer() else 0)
            k = first + draw % (last - first + 1) if last >= first else first
            if integer:
                return int(k * step)
            places = max(0, -math.floor(math.log10(step))) + 2
            return round(k * step, places)
        if low == high:
            return low
        fraction = (draw % 9001 + 500) / 10000  # 0.05 to 0.95: strictly inside the bounds
        value = low + fraction * (high - low)
        rounded = round(value, 2)
        return rounded if low < rounded < high else value


def _merge(left: Mapping[str, Any], right: Any) -> dict[str, Any]:
    """Two schemas of an allOf as one: properties and required joined, the rest overwritten."""
    if not isinstance(right, Mapping):
        return dict(left)
    merged = {**left, **right}
    properties = {**_mapping(left.get("properties")), **_mapping(right.get("properties"))}
    if properties:
        merged["properties"] = properties
    required = [*(left.get("required") or ()), *(right.get("required") or ())]
    if required:
        merged["required"] = list(dict.fromkeys(required))
    return merged


def _bound(
    schema: Mapping[str, Any],
    inclusive: str,
    exclusive: str,
    tighter: Callable[[float, float], float],
) -> tuple[float | None, bool]:
    """(the bound, whether it is exclusive) from both keywords, draft 4's booleans too."""
    closed = _number(schema.get(inclusive))
    flag = schema.get(exclusive)
    if flag is True:  # draft 4: the inclusive keyword's bound, made exclusive
        return closed, closed is not None
    opened = _number(flag)
    if closed is None:
        return opened, opened is not None
    if opened is None:
        return closed, False
    bound = tighter(closed, opened)
    return bound, bound == opened


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# --- formats ---------------------------------------------------------------------------


def _date(maker: _Maker, path: str) -> str:
    n = maker.draw(path, "date")
    return f"{2000 + n % 26:04d}-{1 + (n >> 8) % 12:02d}-{1 + (n >> 16) % 28:02d}"


def _time(maker: _Maker, path: str) -> str:
    n = maker.draw(path, "time")
    return f"{n % 24:02d}:{(n >> 8) % 60:02d}:{(n >> 16) % 60:02d}Z"


def _uuid(maker: _Maker, path: str) -> str:
    digits = f"{maker.draw(path, 'uuid-a'):016x}{maker.draw(path, 'uuid-b'):016x}"
    digits = digits[:12] + "4" + digits[13:16] + "8" + digits[17:]  # version 4, RFC variant
    return "-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))


_FORMATS: Mapping[str, Callable[[_Maker, str], str]] = {
    "date": _date,
    "date-time": lambda m, p: f"{_date(m, p)}T{_time(m, p)}",
    "time": _time,
    "duration": lambda m, p: f"P{1 + m.draw(p, 'duration') % 30}D",
    "email": lambda m, p: f"{m.ascii_word(p, 0)}.{m.ascii_word(p, 1)}@example.com",
    "idn-email": lambda m, p: f"{m.ascii_word(p, 0)}.{m.ascii_word(p, 1)}@example.com",
    "hostname": lambda m, p: f"{m.ascii_word(p, 0)}.example.com",
    "uri": lambda m, p: f"https://example.com/{m.ascii_word(p, 0)}/{m.ascii_word(p, 1)}",
    "url": lambda m, p: f"https://example.com/{m.ascii_word(p, 0)}/{m.ascii_word(p, 1)}",
    "iri": lambda m, p: f"https://example.com/{m.ascii_word(p, 0)}/{m.ascii_word(p, 1)}",
    "uri-reference": lambda m, p: f"/{m.ascii_word(p, 0)}/{m.ascii_word(p, 1)}",
    "uuid": _uuid,
    "ipv4": lambda m, p: f"192.0.2.{1 + m.draw(p, 'ip') % 254}",
    "ipv6": lambda m, p: f"2001:db8::{1 + m.draw(p, 'ip') % 0xFFFE:x}",
}
