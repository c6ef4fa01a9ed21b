"""Job file + flags → a frozen, validated `Job` (see `fields` for what a job holds)."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from lm_deluge_cli.config.checks import (
    check_keys,
    is_number,
    opt_str,
    read_schema,
    table_of,
    unknown_key,
)
from lm_deluge_cli.config.fields import (
    DEFAULT_FSYNC,
    FSYNC_POLICIES,
    STDIO,
    CacheConfig,
    Job,
    JobOverrides,
    ModelEntry,
)
from lm_deluge_cli.config.limits import parse_limits, parse_rate
from lm_deluge_cli.config.requests import (
    agent_fields,
    dedupe_of,
    prompt_cache_of,
    prompt_cache_warmup,
    request_defaults,
)
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.shard import Shard, parse_shard
from lm_deluge_cli.sampling import check_sampling_value
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

_CACHE_KEYS = ("enabled", "path", "read_only", "refresh", "ttl")

_MODEL_KEYS = tuple(f.name for f in fields(ModelEntry))

_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


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
    sampling_data = table_of(data.get("sampling", {}), where, "sampling")
    sampling_overrides = validate_sampling(sampling_data, f"{where}: sampling", base_dir)
    for name in SAMPLING_FIELDS:
        # Only some sampling fields have a flag (stop and json_schema live in files).
        value = getattr(overrides, name, None)
        if value is not None:
            try:
                sampling_overrides[name] = check_sampling_value(name, value)
            except ValueError as exc:
                raise ConfigError(f"--{name.replace('_', '-')} {exc}") from None
    retry_other = data.get("retry_other_model", False)
    if overrides.retry_other_model is not None:
        retry_other = overrides.retry_other_model
    if not isinstance(retry_other, bool):
        raise ConfigError(f"{where}: retry_other_model must be true or false")
    fsync = overrides.fsync or data.get("fsync", DEFAULT_FSYNC)
    if fsync not in FSYNC_POLICIES:
        raise ConfigError(f"{where}: fsync must be one of {', '.join(FSYNC_POLICIES)}")
    registry_entries = data.get("registry", [])
    if not isinstance(registry_entries, list) or not all(
        isinstance(e, dict) for e in registry_entries
    ):
        raise ConfigError(f"{where}: registry must be a list of [[registry]] tables")
    prompt_cache = prompt_cache_of(data, where, overrides)
    job = Job(
        input=input_path,
        output=output_path,
        models=models,
        limits=limits,
        sampling=SamplingParams().merged(sampling_overrides),
        retry_other_model=retry_other,
        fsync=fsync,
        job_file=job_file,
        registry=tuple(registry_entries),
        cache=_cache(data.get("cache", {}), where, overrides, base_dir),
        shard=_shard(overrides.shard, data.get("shard"), where),
        files_root=_files_root(overrides.files_root, data.get("files_root"), where, base_dir),
        sampling_set=frozenset(sampling_overrides),
        requests=request_defaults(data, where, overrides.tool_choice, base_dir),
        prompt_cache=prompt_cache,
        prompt_cache_warmup_s=prompt_cache_warmup(data, where, overrides, prompt_cache),
        dedupe=dedupe_of(data, where, overrides),
        **agent_fields(data, where, overrides, base_dir),
    )
    # Checked now, so a bad entry is a usage error before anything else happens.
    job.model_registry()
    return job


def _cache(raw: Any, where: str, overrides: JobOverrides, base_dir: Path) -> CacheConfig:
    table = table_of(raw, where, "cache")
    check_keys(table, _CACHE_KEYS, where, "cache.")
    flags = {
        "enabled": None if overrides.no_cache is None else not overrides.no_cache,
        "read_only": overrides.cache_read_only,
        "refresh": overrides.refresh_cache,
    }
    values: dict[str, bool] = {}
    for key, flag in flags.items():
        value = table.get(key, key == "enabled") if flag is None else flag
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: cache.{key} must be true or false")
        values[key] = value
    location = overrides.cache
    if location is None:
        path = table.get("path")
        if path is not None and (not isinstance(path, str) or not path):
            raise ConfigError(f"{where}: cache.path must be a directory, a .sqlite file or a URL")
        # A path in the job file is relative to it; a URL or memory: is not a path.
        if path is not None and not _is_cache_url(path):
            path = str(base_dir / Path(path).expanduser())
        location = path
    ttl = overrides.cache_ttl if overrides.cache_ttl is not None else table.get("ttl")
    if ttl is not None and (not is_number(ttl) or not 0 < ttl < math.inf):
        name = "--cache-ttl" if overrides.cache_ttl is not None else f"{where}: cache.ttl"
        raise ConfigError(f"{name} must be a positive number of seconds, got {ttl!r}")
    if values["read_only"] and values["refresh"]:
        raise ConfigError(f"{where}: cache: read_only and refresh cannot both be set")
    return CacheConfig(
        enabled=values["enabled"],
        location=location,
        read_only=values["read_only"],
        refresh=values["refresh"],
        ttl_s=None if ttl is None else float(ttl),
    )


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
        if not weight > 0 or not math.isfinite(weight):
            raise ConfigError(f"-m {value!r}: the weight must be positive")
    return ModelEntry(name=name, weight=weight)


def validate_sampling(
    data: Mapping[str, Any], where: str, base_dir: Path | None = None
) -> dict[str, Any]:
    """Check sampling overrides (any subset of SamplingParams' fields); returns a clean copy.

    With `base_dir` (a job file's folder) a string json_schema names a JSON file there.
    """
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key not in SAMPLING_FIELDS:
            raise ConfigError(unknown_key(key, SAMPLING_FIELDS, where))
        if key == "json_schema" and isinstance(value, str) and base_dir is not None:
            value = read_schema(base_dir / value, f"{where}.{key}")
        try:
            clean[key] = check_sampling_value(key, value)
        except ValueError as exc:
            raise ConfigError(f"{where}.{key} {exc}") from None
    return clean


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
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f'{where}: {label}.name is required, e.g. "openai:gpt-4.1-mini"')
        weight = table.get("weight", 1.0)
        if not is_number(weight) or not weight > 0 or not math.isfinite(weight):
            raise ConfigError(f"{where}: {label}.weight must be a positive number")
        for key in ("base_url", "api_key_env"):
            if key in table and not isinstance(table[key], str):
                raise ConfigError(f"{where}: {label}.{key} must be a string")
        region = table.get("region")
        if region is not None and not (isinstance(region, str) and _AWS_REGION.fullmatch(region)):
            raise ConfigError(
                f'{where}: {label}.region must be an AWS region such as "us-east-1", got {region!r}'
            )
        mock = table_of(table.get("mock", {}), where, f"{label}.mock")
        entries.append(
            ModelEntry(
                name=name,
                weight=float(weight),
                base_url=table.get("base_url"),
                api_key_env=table.get("api_key_env"),
                sampling=validate_sampling(
                    table_of(table.get("sampling", {}), where, f"{label}.sampling"),
                    f"{where}: {label}.sampling",
                ),
                max_requests_per_minute=parse_rate(
                    table.get("max_requests_per_minute"),
                    f"{where}: {label}.max_requests_per_minute",
                ),
                max_tokens_per_minute=parse_rate(
                    table.get("max_tokens_per_minute"), f"{where}: {label}.max_tokens_per_minute"
                ),
                mock=mock,
                region=region,
            )
        )
    return tuple(entries)
