"""The cache key changes with everything that decides the answer, and with nothing else."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import orjson
import pytest
from PIL import Image as PILImage

from lm_deluge_cli.cache.key import RequestKeys, cache_key, content_digest
from lm_deluge_cli.conversation import Message
from lm_deluge_cli.types import SAMPLING_FIELDS, SamplingParams

HELLO = [{"role": "user", "content": "Hello"}]
BASE = SamplingParams()


def key(**changes: Any) -> str:
    args: dict[str, Any] = {
        "provider": "openai",
        "wire_id": "gpt-4.1-mini",
        "messages": HELLO,
        "sampling": BASE,
        "extra_body": None,
    }
    args.update(changes)
    content = content_digest(args.pop("messages"), args.pop("extra_body"))
    return cache_key(content=content, **args)


def test_the_key_is_a_sha256_hex_digest_and_stable() -> None:
    first = key()
    assert len(first) == 64 and int(first, 16) >= 0
    assert key() == first
    assert first == key(messages=[{"content": "Hello", "role": "user"}])
    # The key must not drift between releases, or every existing cache would miss. A change
    # to SamplingParams or to what is keyed needs KEY_VERSION bumped and this value renewed.
    assert first == "2d9aa5251ac54982a5be874050227066f90d24518c74c55ab6604a1c7169230c"


@pytest.mark.parametrize(
    "changes",
    [
        {"provider": "azure"},
        {"wire_id": "gpt-4.1"},
        {"messages": [{"role": "user", "content": "Hello!"}]},
        {"messages": [{"role": "system", "content": "x"}, *HELLO]},
        {"sampling": dataclasses.replace(BASE, temperature=0.7)},
        {"sampling": dataclasses.replace(BASE, top_p=0.9)},
        {"sampling": dataclasses.replace(BASE, max_new_tokens=64)},
        {"sampling": dataclasses.replace(BASE, json_mode=True)},
        {"sampling": dataclasses.replace(BASE, reasoning_effort="low")},
        {"sampling": dataclasses.replace(BASE, logprobs=True)},
        {"sampling": dataclasses.replace(BASE, stop=("\n",))},
        {"sampling": dataclasses.replace(BASE, json_schema={"type": "object"})},
        {"extra_body": {"tools": [{"type": "function", "function": {"name": "f"}}]}},
    ],
)
def test_anything_that_decides_the_answer_changes_the_key(changes: dict[str, Any]) -> None:
    assert key(**changes) != key()


def test_schemas_that_differ_anywhere_differ() -> None:
    one = {"type": "object", "properties": {"a": {"type": "string"}}}
    two = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert key(sampling=dataclasses.replace(BASE, json_schema=one)) != key(
        sampling=dataclasses.replace(BASE, json_schema=two)
    )


def test_dict_order_and_number_spelling_do_not_change_the_key() -> None:
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}
    reordered = dict(reversed(list(schema.items())))
    assert key(sampling=dataclasses.replace(BASE, json_schema=schema)) == key(
        sampling=dataclasses.replace(BASE, json_schema=reordered)
    )
    as_int = dataclasses.replace(BASE, temperature=1, top_p=1)
    assert key(sampling=as_int) == key(sampling=dataclasses.replace(BASE, temperature=1.0))


def test_images_are_keyed_by_content_not_by_name(tmp_path: Any) -> None:
    PILImage.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "one.png")
    PILImage.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "copy.png")
    PILImage.new("RGB", (8, 8), (1, 2, 4)).save(tmp_path / "edited.png")

    def with_image(name: str) -> list[dict[str, Any]]:
        return Message.user("What is this?").add_image(tmp_path / name).to_openai()

    assert key(messages=with_image("one.png")) == key(messages=with_image("copy.png"))
    assert key(messages=with_image("one.png")) != key(messages=with_image("edited.png"))


def written_out(material: dict[str, Any]) -> str:
    """The key as the module docstring defines it: canonical JSON, keys sorted, SHA-256."""
    canonical = orjson.dumps(material, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@pytest.mark.parametrize(
    "sampling",
    [
        BASE,
        SamplingParams(temperature=1, top_p=0.5, max_new_tokens=7, samples=3),
        SamplingParams(stop=("\n", "é"), reasoning_effort="high", logprobs=True, top_logprobs=2),
        SamplingParams(json_mode=True, json_schema={"z": [1, {"b": 2, "a": None}], "a": "\u2028"}),
    ],
)
@pytest.mark.parametrize("extra", [None, {}, {"tools": [{"b": 1, "a": 2}], "seed": 3}])
def test_the_key_is_the_hash_of_the_material_written_out(
    sampling: SamplingParams, extra: dict[str, Any] | None
) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": 'say "hi" \u00e9'}]}]
    content = content_digest(messages, extra)
    assert content == written_out({"messages": messages, "extra": extra or {}})
    keyed = {name: getattr(sampling, name) for name in SAMPLING_FIELDS if name != "samples"}
    keyed.update(temperature=float(sampling.temperature), top_p=float(sampling.top_p))
    material = {"v": 1, "provider": "openai", "model": "gpt-x", "content": content}
    expected = written_out({**material, "sampling": keyed})
    assert cache_key("openai", "gpt-x", content, sampling) == expected
    keys = RequestKeys("openai", "gpt-x", sampling)
    assert keys.key(content) == expected
    other = content_digest([{"role": "user", "content": "another"}])
    assert keys.key(other) == written_out({**material, "content": other, "sampling": keyed})


def test_keys_that_are_not_strings_are_keyed_as_their_text() -> None:
    messages: list[dict[Any, Any]] = [{"role": "user", "content": "x", 1: "one"}]
    assert content_digest(messages) == written_out({"messages": messages, "extra": {}})
