"""Model entries → endpoints: base URL and key resolved, a missing key reported before sending."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from lm_deluge_cli.config.fields import ModelEntry
from lm_deluge_cli.errors import ConfigError, MissingAPIKeyError
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.base_url import access
from lm_deluge_cli.providers.bedrock import credentials_from_env
from lm_deluge_cli.providers.registry import Registry, load_registry

__all__ = ["resolve_endpoint", "resolve_endpoints"]


def resolve_endpoint(
    entry: ModelEntry, registry: Registry | None = None, env: Mapping[str, str] | None = None
) -> Endpoint:
    """Resolve one entry; raises MissingAPIKeyError naming the variable to set."""
    registry = registry or load_registry()
    env = os.environ if env is None else env
    model = registry.lookup(entry.name)
    provider = registry.provider(model.provider)
    reached = access(entry.name, provider, entry.base_url, entry.api_key_env, env)
    wire_format = model.wire_format or provider.wire_format
    if wire_format == "bedrock_anthropic":
        # AWS credentials are read per request by the adapter; check them before any is sent.
        credentials_from_env(env, entry.name)
    elif entry.region is not None:
        raise ConfigError(
            f"{entry.name}: region applies only to Bedrock models (bedrock:...); "
            "remove it from this model entry"
        )
    return Endpoint(
        name=entry.name,
        model=model,
        provider=provider,
        **reached,
        sampling_overrides=dict(entry.sampling),
        region=entry.region,
    )


def resolve_endpoints(
    entries: Sequence[ModelEntry],
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> list[Endpoint]:
    """Resolve every entry of a job; every missing key is named in one error."""
    registry = registry or load_registry()
    endpoints: list[Endpoint] = []
    missing: list[MissingAPIKeyError] = []
    for entry in entries:
        try:
            endpoints.append(resolve_endpoint(entry, registry, env))
        except MissingAPIKeyError as exc:
            missing.append(exc)
    if len(missing) == 1:
        raise missing[0]
    if missing:
        variables = sorted({m.variable for m in missing})
        models = ", ".join(m.model for m in missing)
        raise MissingAPIKeyError(", ".join(variables), models)
    return endpoints
