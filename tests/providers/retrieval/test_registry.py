"""The embedding and rerank registry: the data file, name lookup, endpoint resolution, and the
model entries' dimension checks and cost math."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from typing import Any

import pytest

from lm_deluge_cli.errors import ConfigError, MissingAPIKeyError
from lm_deluge_cli.providers import retrieval
from lm_deluge_cli.providers.retrieval import (
    EMBED_FORMATS,
    RERANK_FORMATS,
    EmbeddingModel,
    RerankModel,
    embed_adapter_for,
    load_retrieval_registry,
    parse_retrieval_registry,
    rerank_adapter_for,
    resolve_embedding_endpoint,
    resolve_rerank_endpoint,
)

from .support import KEY

REGISTRY = load_retrieval_registry()
# The model names the lm-deluge Python library uses.
LIBRARY_EMBEDDING_NAMES = [
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
    "embed-english-v3.0",
    "embed-multilingual-v3.0",
    "embed-english-light-v3.0",
    "embed-multilingual-light-v3.0",
]
LIBRARY_RERANK_NAMES = ["rerank-english-v3.0", "rerank-multilingual-v3.0"]


def _data() -> dict[str, Any]:
    text = resources.files(retrieval).joinpath("models.toml").read_text("utf-8")
    return tomllib.loads(text)


# --- the data file ---------------------------------------------------------------------------


def test_every_provider_has_an_adapter() -> None:
    assert set(REGISTRY.providers) == {
        "openai",
        "cohere",
        "gemini",
        "voyage",
        "mistral",
        "jina",
        "mock",
    }
    for provider in REGISTRY.providers.values():
        if provider.embed_format:
            assert provider.embed_format in EMBED_FORMATS
            embed_adapter_for(provider.embed_format)
        if provider.rerank_format:
            assert provider.rerank_format in RERANK_FORMATS
            rerank_adapter_for(provider.rerank_format)
    mock = REGISTRY.providers["mock"]
    assert (mock.base_url, mock.api_key_env, mock.embed_format, mock.rerank_format) == (
        "mock://in-process/v1",
        "",
        "openai",
        "jina",
    )


def test_every_embedding_entry_is_consistent() -> None:
    models = list(REGISTRY.iter_embedding_models())
    assert len(models) >= 15
    for model in models:
        assert REGISTRY.providers[model.provider].embed_format
        assert model.id == f"{model.provider}:{model.wire_id}"
        assert model.dimensions is not None
        model.check_dimensions(model.dimensions)
        assert model.max_batch_inputs >= 1
        assert model.input_per_mtok is None or model.input_per_mtok >= 0


def test_every_rerank_entry_is_consistent() -> None:
    for model in REGISTRY.iter_rerank_models():
        assert REGISTRY.providers[model.provider].rerank_format
        assert model.max_batch_documents >= 1
    cohere = REGISTRY.rerank_model("cohere:rerank-v3.5")
    assert cohere.per_search_usd is not None and cohere.input_per_mtok is None


@pytest.mark.parametrize("name", LIBRARY_EMBEDDING_NAMES)
def test_library_embedding_names(name: str) -> None:
    model = REGISTRY.embedding_model(name)
    assert model.wire_id == name
    assert name in REGISTRY.aliases(model.id)


@pytest.mark.parametrize("name", LIBRARY_RERANK_NAMES)
def test_library_rerank_names(name: str) -> None:
    assert REGISTRY.rerank_model(name).id == f"cohere:{name}"


def test_documented_limits() -> None:
    small = REGISTRY.embedding_model("text-embedding-3-small")
    assert (small.max_batch_inputs, small.max_batch_tokens, small.dimensions) == (
        2048,
        300000,
        1536,
    )
    assert REGISTRY.embedding_model("cohere:embed-v4.0").dimension_choices == (256, 512, 1024, 1536)
    assert REGISTRY.embedding_model("gemini-embedding-001").max_batch_inputs == 100
    assert REGISTRY.embedding_model("voyage-3.5-lite").max_batch_tokens == 1_000_000
    mock = REGISTRY.embedding_model("mock:embed")
    assert (mock.dimensions, mock.dimension_range, mock.max_batch_inputs, mock.input_per_mtok) == (
        64,
        (1, 4096),
        2048,
        0.0,
    )
    assert REGISTRY.rerank_model("mock:rerank").max_batch_documents == 1000


# --- name lookup -----------------------------------------------------------------------------


def test_unknown_model_of_a_known_provider_gets_defaults() -> None:
    model = REGISTRY.embedding_model("voyage:voyage-4-large")
    assert model == EmbeddingModel("voyage:voyage-4-large", "voyage", "voyage-4-large")
    assert model.input_per_mtok is None and model.max_batch_inputs == 96
    assert model.cost(1000) is None
    model.check_dimensions(777)  # nothing known, nothing refused
    rerank = REGISTRY.rerank_model("jina:jina-colbert-v2")
    assert rerank == RerankModel("jina:jina-colbert-v2", "jina", "jina-colbert-v2")


def test_provider_without_the_api_is_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="jina has no embeddings API") as caught:
        REGISTRY.embedding_model("jina:jina-embeddings-v3")
    assert "cohere, gemini, mistral, mock, openai, voyage" in str(caught.value)
    with pytest.raises(ConfigError, match="openai has no rerank API"):
        REGISTRY.rerank_model("openai:some-reranker")


def test_a_model_of_the_other_kind_is_named_as_such() -> None:
    with pytest.raises(
        ConfigError, match=r"'rerank-v3\.5' is a rerank model, not an embedding model"
    ):
        REGISTRY.embedding_model("rerank-v3.5")
    with pytest.raises(ConfigError, match="is an embedding model, not a rerank model"):
        REGISTRY.rerank_model("cohere:embed-v4.0")


def test_unknown_names() -> None:
    with pytest.raises(ConfigError, match="did you mean text-embedding-3-small"):
        REGISTRY.embedding_model("text-embeding-3-small")
    with pytest.raises(ConfigError, match="`lm-deluge models --embeddings` lists them"):
        REGISTRY.embedding_model("zzzz")
    with pytest.raises(ConfigError, match="`lm-deluge models --rerank` lists them"):
        REGISTRY.rerank_model("zzzz")
    with pytest.raises(ConfigError, match=r"unknown provider 'acme'.*cohere, gemini"):
        REGISTRY.embedding_model("acme:embedder")


# --- dimensions and cost ---------------------------------------------------------------------


def test_dimension_choices() -> None:
    model = REGISTRY.embedding_model("voyage-3.5")
    model.check_dimensions(2048)
    with pytest.raises(ConfigError, match="one of 256, 512, 1024, 2048, got 300"):
        model.check_dimensions(300)


def test_dimension_range() -> None:
    model = REGISTRY.embedding_model("text-embedding-3-large")
    model.check_dimensions(1)
    model.check_dimensions(3072)
    with pytest.raises(ConfigError, match="from 1 to 3072, got 4096"):
        model.check_dimensions(4096)


@pytest.mark.parametrize("bad", [0, -5, True])
def test_dimensions_must_be_positive_integers(bad: Any) -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        REGISTRY.embedding_model("mock:embed").check_dimensions(bad)


def test_fixed_size() -> None:
    ada = REGISTRY.embedding_model("text-embedding-ada-002")
    ada.check_dimensions(1536)
    with pytest.raises(ConfigError, match="this model's size is fixed at 1536"):
        ada.check_dimensions(512)
    assert not ada.sizable


def test_embedding_cost() -> None:
    assert REGISTRY.embedding_model("text-embedding-3-small").cost(1_000_000) == pytest.approx(0.02)
    assert REGISTRY.embedding_model("text-embedding-3-large").cost(250_000) == pytest.approx(0.0325)
    assert REGISTRY.embedding_model("mock:embed").cost(10**9) == 0.0
    assert REGISTRY.embedding_model("embed-english-light-v3.0").cost(100) is None


def test_rerank_cost() -> None:
    cohere = REGISTRY.rerank_model("rerank-v3.5")
    assert cohere.cost(None, 3) == pytest.approx(0.006)
    assert cohere.cost(5000, None) is None  # billed in searches, and none were reported
    voyage = REGISTRY.rerank_model("rerank-2.5")
    assert voyage.cost(2_000_000, None) == pytest.approx(0.10)
    assert voyage.cost(None, None) is None
    assert REGISTRY.rerank_model("jina-reranker-v3").cost(1000, None) is None
    assert REGISTRY.rerank_model("mock:rerank").cost(12345, None) == 0.0


# --- data-file validation --------------------------------------------------------------------


def _broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_data())
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(models=[]), "unknown key 'models'"),
        (
            lambda d: d["providers"]["jina"].update(rerank_format="cohere_v1"),
            "rerank_format 'cohere_v1'",
        ),
        (lambda d: d["providers"]["jina"].pop("rerank_format"), "give an embed_format"),
        (lambda d: d["providers"]["voyage"].pop("base_url"), "base_url is required"),
        (lambda d: d["embedding_models"][0].update(colour="red"), "unknown key 'colour'"),
        (lambda d: d["embedding_models"][0].update(id="text-embedding-3-small"), "provider:model"),
        (lambda d: d["embedding_models"][0].update(id="jina:embeddings"), "has no embed_format"),
        (lambda d: d["embedding_models"][0].update(input_per_mtok=-1), "cannot be negative"),
        (lambda d: d["embedding_models"][0].update(max_batch_inputs=0), "must be positive"),
        (lambda d: d["embedding_models"][0].update(dimension_choices=[256]), "not both"),
        (lambda d: d["embedding_models"][0].update(dimension_range=[10, 5]), "[lowest, highest]"),
        (
            lambda d: d["embedding_models"][0].update(dimensions=4000),
            "default dimensions are not allowed",
        ),
        (lambda d: d["embedding_models"][0].pop("dimensions"), "needs its default dimensions"),
        (lambda d: d["embedding_models"][3].update(dimension_choices=[512, 256]), "increasing"),
        (
            lambda d: d["embedding_models"][1].update(id="openai:text-embedding-3-small"),
            "listed twice",
        ),
        (
            lambda d: d["embedding_models"][1].update(aliases=["text-embedding-3-small"]),
            "already names",
        ),
        (lambda d: d["rerank_models"][0].update(aliases=["cohere:x"]), "without ':'"),
        (lambda d: d["rerank_models"][0].update(per_search_usd="2"), "must be a number"),
    ],
)
def test_malformed_data_is_refused(change: Any, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_retrieval_registry(_broken(change), source="test.toml")
    assert words in str(caught.value)
    assert str(caught.value).startswith("test.toml")


# --- endpoint resolution ---------------------------------------------------------------------


def test_key_from_the_providers_variable() -> None:
    endpoint = resolve_embedding_endpoint(
        "text-embedding-3-small", env={"OPENAI_API_KEY": f" {KEY}\n"}
    )
    assert endpoint.api_key == KEY
    assert endpoint.api_key_env == "OPENAI_API_KEY"
    assert endpoint.base_url == "https://api.openai.com/v1"
    assert not endpoint.compatible
    assert KEY not in repr(endpoint)


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(MissingAPIKeyError) as caught:
        resolve_rerank_endpoint("rerank-2.5", env={})
    assert caught.value.variable == "VOYAGE_API_KEY"
    assert "set VOYAGE_API_KEY" in str(caught.value)


def test_other_variable_or_none() -> None:
    env = {"MY_COHERE": KEY}
    endpoint = resolve_rerank_endpoint("cohere:rerank-v3.5", api_key_env="MY_COHERE", env=env)
    assert (endpoint.api_key, endpoint.api_key_env) == (KEY, "MY_COHERE")
    keyless = resolve_embedding_endpoint(
        "openai:bge-m3", api_key_env="", base_url="http://localhost:8000/v1/", env={}
    )
    assert keyless.api_key is None
    assert keyless.base_url == "http://localhost:8000/v1"
    assert keyless.compatible


def test_base_url_from_the_environment() -> None:
    env = {"CO_API_URL": "https://cohere.internal.example/", "CO_API_KEY": KEY}
    endpoint = resolve_embedding_endpoint("embed-english-v3.0", env=env)
    assert endpoint.base_url == "https://cohere.internal.example"
    assert endpoint.compatible


def test_mock_needs_no_key() -> None:
    endpoint = resolve_embedding_endpoint("mock:embed", env={})
    assert (endpoint.api_key, endpoint.base_url, endpoint.compatible) == (
        None,
        "mock://in-process/v1",
        False,
    )
    assert resolve_rerank_endpoint("mock:rerank", env={}).provider.rerank_format == "jina"


def test_any_provider_at_a_mock_url_reads_no_key_unless_its_entry_names_one() -> None:
    env = {"OPENAI_API_KEY": KEY, "MOCK_KEY": "sk-for-the-mock"}
    url = "mock://in-process/v1"
    endpoint = resolve_embedding_endpoint("text-embedding-3-small", base_url=url, env=env)
    assert (endpoint.api_key, endpoint.api_key_env) == (None, "")
    rerank = resolve_rerank_endpoint("rerank-v3.5", base_url="mock://in-process/cohere", env={})
    assert rerank.api_key is None
    named = resolve_embedding_endpoint(
        "text-embedding-3-small", base_url=url, api_key_env="MOCK_KEY", env=env
    )
    assert named.api_key == "sk-for-the-mock"


def test_key_that_cannot_be_a_header_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_embedding_endpoint("voyage-3.5", env={"VOYAGE_API_KEY": "pa-abc def"})
    assert "VOYAGE_API_KEY" in str(caught.value)
    assert "pa-abc" not in str(caught.value)


def test_resolution_raises_lookup_errors() -> None:
    with pytest.raises(ConfigError, match="no embeddings API"):
        resolve_embedding_endpoint("jina:jina-embeddings-v3", env={"JINA_API_KEY": KEY})


# --- the package facade ----------------------------------------------------------------------


def test_facade_reexports_every_modules_names() -> None:
    for module in (
        retrieval.base,
        retrieval.cohere,
        retrieval.gemini,
        retrieval.jina,
        retrieval.mistral,
        retrieval.openai,
        retrieval.registry,
        retrieval.voyage,
    ):
        for name in module.__all__:
            assert getattr(retrieval, name) is getattr(module, name)
            assert name in retrieval.__all__


def test_unknown_formats() -> None:
    with pytest.raises(ConfigError, match="no embeddings adapter for wire format 'jina'"):
        embed_adapter_for("jina")
    with pytest.raises(ConfigError, match="no rerank adapter"):
        rerank_adapter_for("openai")
