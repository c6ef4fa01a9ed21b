"""Every option of run and the toolkit commands reaches the job: each sets its JobOverrides
field, with a type the field takes, unless the command uses it itself. Each command is
invoked in-process with one option at a time, and the JobOverrides it hands to load_job is
looked at."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from types import ModuleType, NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest
import typer
from typer.testing import CliRunner

from lm_deluge_cli.cli import embed, extract, rerank, run, score, translate
from lm_deluge_cli.cli.app import app
from lm_deluge_cli.config import JobOverrides

_SHOWN = {"fresh", "quiet", "json_summary", "verbose"}

# Each command's module, and the options it uses itself rather than as a job value.
COMMANDS: dict[str, tuple[ModuleType, set[str]]] = {
    "run": (run, _SHOWN | {"dry_run"}),
    "extract": (extract, _SHOWN | {"schema", "document_name", "object_name"}),
    "score": (score, _SHOWN | {"question"}),
    "translate": (translate, _SHOWN | {"to", "detect", "threshold"}),
    "embed": (embed, _SHOWN | {"dimensions", "input_type", "batch_size"}),
    "rerank": (rerank, _SHOWN | {"query", "top_n"}),
}

DEFAULT = JobOverrides()


def _options(name: str) -> dict[str, list[str]]:
    """Each option of the command by its parameter's name, given once with a value its
    type takes (a flag alone)."""
    command: Any = typer.main.get_command(app)
    module, _ = COMMANDS[name]
    hints = get_type_hints(getattr(module, name))
    options = {}
    for param in command.get_command(None, name).params:
        if param.param_type_name != "option":
            continue
        if param.is_flag:
            options[param.name] = [param.opts[0]]
            continue
        hint = hints[param.name]
        kind = (get_args(hint) or (hint,))[0]  # X of X | None
        value = {int: "3", float: "2.5"}.get(kind, "text")
        options[param.name] = [param.opts[0], value]
    return options


def _overrides(monkeypatch: pytest.MonkeyPatch, name: str, args: list[str]) -> JobOverrides:
    """What `lm-deluge NAME ARGS` hands to load_job (which stops the command there)."""
    module, _ = COMMANDS[name]
    seen: list[JobOverrides] = []

    def load_job(job_file: Any, overrides: JobOverrides, **_: Any) -> None:
        seen.append(overrides)
        raise typer.Exit(0)

    monkeypatch.setattr(module, "load_job", load_job)
    result = CliRunner().invoke(app, [name, *args])
    assert result.exit_code == 0, result.output
    (overrides,) = seen
    return overrides


def _set(overrides: JobOverrides) -> set[str]:
    return {
        f.name
        for f in fields(JobOverrides)
        if getattr(overrides, f.name) != getattr(DEFAULT, f.name)
    }


@pytest.mark.parametrize("name", COMMANDS)
def test_each_option_sets_one_job_value_or_is_the_commands_own(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    _, own = COMMANDS[name]
    options = _options(name)
    assert own <= options.keys(), "an option listed as the command's own is gone"
    reached: set[str] = set()
    for option, args in options.items():
        if option in own:
            continue
        changed = _set(_overrides(monkeypatch, name, args))
        # Each sets the field of its own name (-m, repeatable, sets models).
        expected = "models" if option == "model" else option
        assert changed == {expected}, f"{name} {args[0]} set {changed or 'nothing'}"
        reached |= changed
    # Nothing given, nothing set: the job file and the defaults apply.
    assert _set(_overrides(monkeypatch, name, ["job.toml"])) == set()
    if name == "run":
        # run takes every job value there is a flag for.
        assert reached == {f.name for f in fields(JobOverrides)}


def test_a_flag_lands_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    overrides = _overrides(
        monkeypatch,
        "score",
        ["-m", "mock:fast=2", "-m", "mock:other", "--max-attempts", "7", "--no-logprobs"],
    )
    assert list(overrides.models) == ["mock:fast=2", "mock:other"]
    assert (overrides.max_attempts, overrides.logprobs) == (7, False)


def _members(hint: Any) -> tuple[Any, ...]:
    """X and None of X | None; a type that is not a union alone."""
    return get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)


def _fits(given: Any, field: Any) -> bool:
    """Whether every value of the option's type (X | None …) is one the field's type takes."""
    takes = set(_members(field))
    for kind in _members(given):
        # -m gives a list of names; the field takes any sequence of them.
        if get_origin(kind) is list and any(
            get_origin(t) is Sequence and get_args(t) == get_args(kind) for t in takes
        ):
            continue
        if kind not in takes:
            return False
    return True


@pytest.mark.parametrize("name", COMMANDS)
def test_each_option_has_a_type_its_field_takes(name: str) -> None:
    module, own = COMMANDS[name]
    hints = get_type_hints(getattr(module, name))
    field_types = get_type_hints(JobOverrides)
    for option in _options(name).keys() - own:
        takes = field_types[option] if option != "model" else field_types["models"] | None
        # (-m left out is None: no models, which job_overrides turns into ().)
        assert _fits(hints[option], takes), f"{name} {option}: {hints[option]}"


def test_fits_refuses_a_type_the_field_does_not_take() -> None:
    assert _fits(int | None, int | None)
    assert _fits(str | None, float | str | None)
    assert _fits(list[str], Sequence[str])
    assert not _fits(list[str] | None, Sequence[str])
    assert not _fits(float | None, int | None)
    assert not _fits(list[int] | None, Sequence[str])
    assert not _fits(int, NoneType)
