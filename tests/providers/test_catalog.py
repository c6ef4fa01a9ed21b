"""What the chat and retrieval registries share: the model table (ids, aliases) and a name
that is no known model split into provider and wire id, or refused saying what to write."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.catalog import ModelTable, Naming, entry_name

CHAT = Naming("model", "`lm-deluge models`", example="openai")
EMBED = Naming("embedding model", "`lm-deluge models --embeddings`")


@dataclass(frozen=True)
class Entry:
    id: str


def table() -> ModelTable[Entry]:
    models = ModelTable[Entry]()
    models.add(Entry("acme:big-2"), ["big"], "test.toml: model 'acme:big-2'")
    return models


def test_find_by_id_or_alias() -> None:
    models = table()
    assert models.find("acme:big-2") == models.find("big") == Entry("acme:big-2")
    assert models.by_alias("big") == Entry("acme:big-2")
    assert models.by_alias("acme:big-2") is None
    assert models.find("small") is None
    assert models.aliases_of("acme:big-2") == ("big",)


@pytest.mark.parametrize(
    ("model", "aliases", "taken", "words"),
    [
        (Entry("acme:big-2"), [], None, "test.toml: x: the id is listed twice"),
        (Entry("acme:other"), ["big"], None, "alias 'big' already names 'acme:big-2'"),
        (Entry("acme:new"), [], {"acme:new"}, "the id is listed twice"),
    ],
)
def test_add_refuses_a_second_id_or_a_taken_alias(
    model: Entry, aliases: list[str], taken: set[str] | None, words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        table().add(model, aliases, "test.toml: x", taken)


def test_add_replaces_an_id_not_taken() -> None:
    models = table()
    models.add(Entry("acme:big-2"), [], "job file: model 'acme:big-2'", taken=set())
    assert models.find("big") == Entry("acme:big-2")


def test_split_a_provider_model_name() -> None:
    assert table().split("acme:x:y", CHAT, {"acme"}, "") == ("acme", "x:y")


@pytest.mark.parametrize(
    ("name", "naming", "message"),
    [
        (
            "bgi",
            CHAT,
            "unknown model 'bgi': write it as provider:model (e.g. openai:bgi) or use a known "
            "name; did you mean big?",
        ),
        (
            "zzzz",
            EMBED,
            "unknown embedding model 'zzzz': write it as provider:model or use a known name; "
            "`lm-deluge models --embeddings` lists them",
        ),
        ("acme:", CHAT, "unknown model 'acme:'"),
        ("nosuch:x", EMBED, "unknown provider 'nosuch' in embedding model 'nosuch:x'; CHOICES"),
        (":x", EMBED, "unknown provider '' in embedding model ':x'; CHOICES"),
    ],
)
def test_split_refuses_saying_what_to_write(name: str, naming: Naming, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        table().split(name, naming, {"acme"}, "CHOICES")
    assert str(caught.value).startswith(message)


def test_entry_name() -> None:
    assert entry_name("a.toml", "rerank model", {"id": "x:y"}, 3) == "a.toml: rerank model 'x:y'"
    assert entry_name("a.toml", "rerank model", {}, 3) == "a.toml: rerank model entry 3"
