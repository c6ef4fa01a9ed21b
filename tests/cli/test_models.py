"""`lm-deluge models`: the table, --json and --provider, driven through Typer."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from lm_deluge_cli.cli.models import models
from lm_deluge_cli.errors import UsageError
from lm_deluge_cli.providers.registry import ModelInfo, load_registry

FIELDS = {
    "id", "provider", "wire_id", "aliases", "input_per_mtok", "cached_input_per_mtok",
    "cache_write_per_mtok", "cache_write_1h_per_mtok", "output_per_mtok", "context_window",
    "reasoning", "supports_json", "supports_json_schema", "supports_images", "supports_pdf",
    "supports_logprobs", "adaptive_thinking", "batch_discount", "wire_format",
}  # fmt: skip


def invoke(*args: str, columns: int = 200) -> Result:
    app = typer.Typer()
    app.command()(models)
    # A fixed width: rich sizes the table to the terminal it thinks it has.
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})


def json_lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_json_lists_every_known_model_with_every_field() -> None:
    records = json_lines(invoke("--json"))
    registry = load_registry()
    assert [r["id"] for r in records] == [m.id for m in registry.iter_models()]
    assert len(records) >= 100
    for record in records:
        assert set(record) == FIELDS
        aliases = record.pop("aliases")
        model = registry.lookup(record["id"])
        provider_format = registry.provider(model.provider).wire_format
        assert record.pop("wire_format") == (model.wire_format or provider_format)
        assert ModelInfo(**record, wire_format=model.wire_format) == model
        assert tuple(aliases) == registry.aliases(record["id"])


def test_json_record_of_a_known_model() -> None:
    (mini,) = [r for r in json_lines(invoke("--json")) if r["id"] == "openai:gpt-4.1-mini"]
    assert mini == {
        "id": "openai:gpt-4.1-mini",
        "provider": "openai",
        "wire_id": "gpt-4.1-mini",
        "aliases": ["gpt-4.1-mini"],
        "input_per_mtok": 0.4,
        "cached_input_per_mtok": 0.1,
        "cache_write_per_mtok": None,
        "cache_write_1h_per_mtok": None,
        "output_per_mtok": 1.6,
        "context_window": 1047576,
        "reasoning": False,
        "supports_json": True,
        "supports_json_schema": True,
        "supports_images": True,
        "supports_pdf": True,
        "supports_logprobs": True,
        "adaptive_thinking": False,
        "batch_discount": 0.5,
        "wire_format": "openai_chat",
    }


@pytest.mark.parametrize("provider", ["anthropic", "groq", "bedrock", "mock"])
def test_provider_filters_the_listing(provider: str) -> None:
    records = json_lines(invoke("--json", "--provider", provider))
    assert records
    assert {r["provider"] for r in records} == {provider}
    expected = [m.id for m in load_registry().iter_models(provider)]
    assert [r["id"] for r in records] == expected


def test_short_provider_option() -> None:
    assert {r["provider"] for r in json_lines(invoke("-p", "xai", "--json"))} == {"xai"}


def test_table_shows_prices_context_and_capabilities() -> None:
    result = invoke("--provider", "openai")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "$/M in" in lines[1] and "caps" in lines[1]
    (row,) = [line for line in lines if "openai:gpt-4.1-mini " in line]
    assert row.split()[:2] == ["openai:gpt-4.1-mini", "gpt-4.1-mini"]
    assert row.split()[2:] == ["0.4", "0.1", "-", "-", "1.6", "1.05M", "JSIPL-"]
    (row,) = [line for line in lines if "openai:gpt-5 " in line]
    assert row.split()[2:] == ["1.25", "0.125", "-", "-", "10", "400K", "JSIP-R"]
    assert "J json mode" in result.output and "R reasoning" in result.output
    assert "anthropic:" not in result.output


def test_unknown_prices_and_context_show_as_dashes() -> None:
    result = invoke("--provider", "meta")
    (row,) = [line for line in result.output.splitlines() if "Llama-4-Scout" in line]
    assert row.split()[2:] == ["-", "-", "-", "-", "-", "-", "-SI---"]


def test_the_table_shows_cache_write_prices_of_both_lifetimes() -> None:
    result = invoke("--provider", "anthropic")
    lines = result.output.splitlines()
    assert lines[1].split()[-7:] == ["in", "cached", "write", "1h", "out", "context", "caps"]
    (row,) = [line for line in lines if "anthropic:claude-haiku-4-5-20251001 " in line]
    assert row.split()[-7:] == ["1", "0.1", "1.25", "2", "5", "200K", "-SIP-R"]
    assert "write, 1h: writes kept 5 minutes, 1 hour" in result.output


def test_a_bedrock_model_without_one_hour_writes_shows_a_dash() -> None:
    result = invoke("--provider", "bedrock")
    (row,) = [line for line in result.output.splitlines() if "claude-opus-4-1" in line]
    assert row.split()[-7:] == ["15", "1.5", "18.75", "-", "75", "200K", "--IP-R"]


def test_a_middling_terminal_drops_the_aliases_before_the_write_prices() -> None:
    result = invoke("--provider", "anthropic", columns=100)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "aliases" not in lines[1] and "write" in lines[1]
    assert all(len(line) <= 100 for line in lines)


def test_a_narrow_terminal_drops_aliases_and_folds_names_but_keeps_the_numbers() -> None:
    result = invoke("--provider", "bedrock", columns=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "aliases" not in lines[1] and "caps" in lines[1]
    assert "claude-opus-4.1-bedrock" not in result.output
    assert "write" not in lines[1] and "18.75" not in result.output
    assert "…" not in result.output
    (row,) = [line for line in lines if line.split()[1:] == ["15", "1.5", "75", "200K", "--IP-R"]]
    assert row.split()[0].startswith("bedrock:us.anthropic")


def test_model_names_are_not_read_as_markup() -> None:
    result = invoke("--provider", "gemini")
    assert "gemini:gemini-2.5-flash" in result.output


def test_an_unknown_provider_is_a_usage_error_naming_the_known_ones() -> None:
    result = invoke("--provider", "nosuch")
    assert result.exit_code != 0
    assert isinstance(result.exception, UsageError)
    message = str(result.exception)
    assert "unknown provider 'nosuch'" in message
    for name in ("anthropic", "bedrock", "groq", "openai", "xai"):
        assert name in message
    assert result.output == ""


def test_json_names_the_wire_format_each_model_is_sent_with() -> None:
    records = {r["id"]: r for r in json_lines(invoke("--json", "--provider", "openai"))}
    assert records["openai:o3-pro"]["wire_format"] == "openai_responses"
    assert records["openai:gpt-4.1-mini"]["wire_format"] == "openai_chat"
