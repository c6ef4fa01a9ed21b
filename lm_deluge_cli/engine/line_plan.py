"""What a line is planned to go to: the run's models (`ModelSlot`) and a prompt ready to
run on one of them (`Plan`), as the look-up stage hands it to the workers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lm_deluge_cli.cache.key import sample_key
from lm_deluge_cli.engine.reuse import StoredAnswer
from lm_deluge_cli.engine.sender import EndpointRoute
from lm_deluge_cli.providers import Adapter, Endpoint
from lm_deluge_cli.types import Prompt, RateLimitInfo, SamplingParams

__all__ = ["ModelSlot", "Plan"]


@dataclass(slots=True, kw_only=True)
class ModelSlot(EndpointRoute):
    """A chat model the run can send to: its endpoint, adapter and sampling, and (from
    `Route`) its transport, limits and health."""

    endpoint: Endpoint
    adapter: Adapter
    sampling: SamplingParams

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return self.adapter.rate_limit_info(headers)


@dataclass(slots=True)
class Plan:
    """A prompt ready to run: its model, how many answers it wants, and its cache keys.

    `key` is None when nothing is reused (no cache and no sharing); `shared` False keeps
    identical lines apart (each line its own request). `stored` holds the answers the
    cache had for each sample, once looked up. `estimate` is the prompt's tokens as the
    limiter counts them on `slot`, when planning counted them (None: counted when sent).
    """

    prompt: Prompt
    slot: ModelSlot
    samples: int
    key: str | None = None
    shared: bool = True
    stored: list[StoredAnswer | None] | None = None
    estimate: int | None = None

    def sample_keys(self) -> list[str]:
        """Each sample's own key (the first is the request's), or none without a key."""
        if self.key is None:
            return []
        if self.samples == 1:
            return [self.key]
        return [sample_key(self.key, index) for index in range(self.samples)]
