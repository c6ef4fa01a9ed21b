"""Job file + flags → a frozen, validated `Job` (see `fields` for what a job holds)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from lm_deluge_cli.config.checks import (
    check_keys,
    check_sampling,
    opt_str,
    read_schema,
    table_of,
)
from lm_deluge_cli.config.fields import (
    DEFAULT_FSYNC,
    STDIO,
    CacheConfig,
    Job,
    JobOverrides,
    ModelEntry,
)
from lm_deluge_cli.config.limits import FILE_UNLIMITED, file_rate, name_refused, parse_limits
from lm_deluge_cli.config.requests import (
    agent_fields,
    prompt_cache_of,
    prompt_cache_warmup,
    request_defaults,
)
from lm_deluge_cli.errors import ConfigError, InvalidValueError
from lm_deluge_cli.io.shard import Shard, parse_shard
from lm_deluge_cli.types import SAMPLING_FIELDS, SamplingParams

__all__ = ["load_job", "parse_model_flag", "validate_sampling"]

_TOP_KEYS = (
    "input",
    "output",
    "models",
    "limits",
    "sampling",
    "retry_other_model",
    "fsync",
    "registry",
    "cache",
    "shard",
    "files_root",
    "tools",
    "tool_choice",
    "prompt_cache",
    "prompt_cache_ttl",
    "prompt_cache_key",
    "dedupe",
    "tools_module",
    "max_rounds",
    "prompt_cache_warmup",
)

_MODEL_KEYS = tuple(f.name for f in fields(ModelEntry))

# Job fields a flag or the top of the job file sets: the flag's JobOverrides field, and the
# file's key (how a value the Job refuses is named).
_JOB_SOURCES = {
    "retry_other_model": ("retry_other_model", "retry_other_model"),
    "fsync": ("fsync", "fsync"),
    "dedupe": ("no_dedupe", "dedupe"),
    "prompt_cache_warmup_s": ("prompt_cache_warmup", "prompt_cache_warmup"),
    "max_rounds": ("max_rounds", "max_rounds"),
}
# CacheConfig's fields likewise: their flags, and their keys in the file's [cache] table.
_CACHE_SOURCES = {
    "enabled": ("no_cache", "enabled"),
    "read_only": ("cache_read_only", "read_only"),
    "refresh": ("refresh_cache", "refresh"),
    "location": ("cache", "path"),
    "ttl_s": ("cache_ttl", "ttl"),
}
_CACHE_KEYS = ("enabled", "path", "read_only", "refresh", "ttl")


def load_job(
    job_file: Path | None, overrides: JobOverrides | None = None, *, need_output: bool = True
) -> Job:
    """Read and validate a job file (if any), apply flag overrides, and check paths.

    With `need_output` False (a dry run, which writes nothing) a missing output is
    allowed and left as "".
    """
    overrides = overrides or JobOverrides()
    data: dict[str, Any] = {}
    where = "flags"
    base_dir = Path.cwd()
    if job_file is not None:
        where = str(job_file)
        try:
            data = tomllib.loads(job_file.read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"job file {job_file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read job file {job_file}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{job_file} is not valid TOML: {exc}") from None
        base_dir = job_file.resolve().parent
    check_keys(data, _TOP_KEYS, where, "")

    input_path = overrides.input or opt_str(data, "input", where)
    output_path = overrides.output or opt_str(data, "output", where)
    if not input_path:
        raise ConfigError("no input: give -i FILE (or -i - for stdin), or set input in the job")
    if not output_path and need_output:
        raise ConfigError("no output: give -o FILE (or -o - for stdout), or set output in the job")
    output_path = output_path or ""
    # Paths from the job file resolve against its folder; paths from flags against the cwd.
    if not overrides.input and input_path != STDIO:
        input_path = str(base_dir / input_path)
    if not overrides.output and output_path not in (STDIO, ""):
        output_path = str(base_dir / output_path)

    if overrides.models:
        models = tuple(parse_model_flag(m) for m in overrides.models)
    else:
        models = _models(data.get("models"), where)
    if not models:
        raise ConfigError("no model: give -m PROVIDER:MODEL, or add a [[models]] entry to the job")

    limits = parse_limits(data.get("limits", {}), where, overrides)
    sampling, sampling_set = _sampling(data, where, overrides, base_dir)
    registry_entries = data.get("registry", [])
    if not isinstance(registry_entries, list) or not all(
        isinstance(e, dict) for e in registry_entries
    ):
        raise ConfigError(f"{where}: registry must be a list of [[registry]] tables")
    prompt_cache = prompt_cache_of(data, where, overrides)
    cache = _cache(data.get("cache", {}), where, overrides, base_dir)
    shard = _shard(overrides.shard, data.get("shard"), where)
    files_root = _files_root(overrides.files_root, data.get("files_root"), where, base_dir)
    requests = request_defaults(data, where, overrides.tool_choice, base_dir)
    agent = agent_fields(data, where, overrides, base_dir)
    try:
        return Job(
            input=input_path,
            output=output_path,
            models=models,
            limits=limits,
            sampling=sampling,
            retry_other_model=_given(overrides.retry_other_model, data, "retry_other_model", False),
            fsync=_given(overrides.fsync, data, "fsync", DEFAULT_FSYNC),
            job_file=job_file,
            registry=tuple(registry_entries),
            cache=cache,
            shard=shard,
            files_root=files_root,
            sampling_set=sampling_set,
            requests=requests,
            prompt_cache=prompt_cache,
            prompt_cache_warmup_s=prompt_cache_warmup(data, overrides, prompt_cache),
            dedupe=False if overrides.no_dedupe else data.get("dedupe", True),
            **agent,
        )
    except InvalidValueError as exc:
        raise _name_by_source(exc, _JOB_SOURCES, overrides, f"{where}: ") from None


def _sampling(
    data: Mapping[str, Any], where: str, overrides: JobOverrides, base_dir: Path
) -> tuple[SamplingParams, frozenset[str]]:
    """The job's [sampling] with the sampling flags over it (SamplingParams checks them),
    and the fields either set."""
    table = table_of(data.get("sampling", {}), where, "sampling")
    check_keys(table, SAMPLING_FIELDS, f"{where}: sampling", "")
    values = dict(table)
    schema = values.get("json_schema")
    if isinstance(schema, str):
        values["json_schema"] = read_schema(base_dir / schema, f"{where}: sampling.json_schema")
    # Only some sampling fields have a flag (stop and json_schema live in files).
    flagged = {name for name in SAMPLING_FIELDS if getattr(overrides, name, None) is not None}
    values.update((name, getattr(overrides, name)) for name in flagged)
    try:
        return SamplingParams(**values), frozenset(values)
    except InvalidValueError as exc:
        if exc.field in flagged:
            raise exc.at("--" + exc.field.replace("_", "-")) from None
        raise exc.at(f"{where}: sampling.{exc.field}") from None


def _given(flag: Any, data: Mapping[str, Any], key: str, default: Any) -> Any:
    """The flag's value if it was given, else the job file's, else `default`."""
    return flag if flag is not None else data.get(key, default)


def _name_by_source(
    exc: InvalidValueError,
    sources: Mapping[str, tuple[str, str]],
    overrides: JobOverrides,
    file_prefix: str,
) -> ConfigError:
    """`exc` naming its field as the flag that gave it, else as the job file's key after
    `file_prefix` (`sources`: each field's JobOverrides field and file key)."""
    if exc.field not in sources:
        return exc
    flag, key = sources[exc.field]
    if getattr(overrides, flag) is not None:
        return exc.at("--" + flag.replace("_", "-"))
    return exc.at(file_prefix + key)


def _cache(raw: Any, where: str, overrides: JobOverrides, base_dir: Path) -> CacheConfig:
    table = table_of(raw, where, "cache")
    check_keys(table, _CACHE_KEYS, where, "cache.")
    values = {name: table[key] for name, (_, key) in _CACHE_SOURCES.items() if key in table}
    path = values.get("location")
    # A path in the job file is relative to it; a URL or memory: is not a path.
    if isinstance(path, str) and path and not _is_cache_url(path):
        values["location"] = str(base_dir / Path(path).expanduser())
    flags = {
        "enabled": None if overrides.no_cache is None else not overrides.no_cache,
        "read_only": overrides.cache_read_only,
        "refresh": overrides.refresh_cache,
        "location": overrides.cache,
        "ttl_s": overrides.cache_ttl,
    }
    values.update((name, flag) for name, flag in flags.items() if flag is not None)
    try:
        return CacheConfig(**values)
    except InvalidValueError as exc:
        raise _name_by_source(exc, _CACHE_SOURCES, overrides, f"{where}: cache.") from None


def _files_root(flag: str | None, value: Any, where: str, base_dir: Path) -> str | None:
    """The files root as an absolute path: a flag from the cwd, the job's key from its folder."""
    if flag is not None:
        label, path = "--files-root", Path(flag).expanduser().absolute()
    elif value is None:
        return None
    elif not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: files_root must be a folder path (a string)")
    else:
        label, path = f"{where}: files_root", base_dir / Path(value).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"{label} {path} is not a folder; give the folder that input lines' images "
            "and files must be under"
        )
    return str(path)


def _shard(flag: str | None, value: Any, where: str) -> Shard | None:
    if flag is not None:
        return parse_shard(flag)
    if value is None:
        return None
    return parse_shard(value, f"{where}: shard")


def _is_cache_url(spec: str) -> bool:
    return spec == "memory:" or spec.partition("://")[0] in ("redis", "rediss", "unix")


def parse_model_flag(value: str) -> ModelEntry:
    """`NAME` or `NAME=WEIGHT` from -m/--model."""
    name, sep, weight_text = value.partition("=")
    name = name.strip()
    if not name:
        raise ConfigError(f"-m {value!r}: give a model name such as openai:gpt-4.1-mini")
    weight = 1.0
    if sep:
        try:
            weight = float(weight_text)
        except ValueError:
            raise ConfigError(f"-m {value!r}: the weight after '=' must be a number") from None
    try:
        return ModelEntry(name=name, weight=weight)
    except InvalidValueError as exc:
        raise exc.at(f"-m {value!r}: the {exc.field}") from None


def validate_sampling(
    data: Mapping[str, Any], where: str, base_dir: Path | None = None
) -> dict[str, Any]:
    """Check sampling overrides (any subset of SamplingParams' fields); returns a clean copy.

    With `base_dir` (a job file's folder) a string json_schema names a JSON file there.
    """
    schema = data.get("json_schema")
    if isinstance(schema, str) and base_dir is not None:
        data = {**data, "json_schema": read_schema(base_dir / schema, f"{where}.json_schema")}
    return check_sampling(data, where)


def _models(raw: Any, where: str) -> tuple[ModelEntry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: models must be a list of [[models]] tables")
    entries = []
    for index, item in enumerate(raw):
        label = f"models[{index}]"
        table = table_of(item, where, label)
        check_keys(table, _MODEL_KEYS, where, label + ".")
        values = {
            **table,
            "name": table.get("name"),
            "sampling": table_of(table.get("sampling", {}), where, f"{label}.sampling"),
            "mock": table_of(table.get("mock", {}), where, f"{label}.mock"),
            "max_requests_per_minute": file_rate(table.get("max_requests_per_minute")),
            "max_tokens_per_minute": file_rate(table.get("max_tokens_per_minute")),
        }
        try:
            entries.append(ModelEntry(**values))
        except InvalidValueError as exc:
            raise name_refused(
                exc, f"{where}: {label}.{exc.field}", FILE_UNLIMITED, values
            ) from None
    return tuple(entries)
