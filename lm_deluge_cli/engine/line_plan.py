"""What a line is planned to go to: the run's models (`ModelSlot`) and a prompt ready to
run on one of them (`Plan`), as the look-up stage hands it to the workers."""

from __future__ import annotations

from dataclasses import dataclass

from lm_deluge_cli.cache.key import sample_key
from lm_deluge_cli.engine.learning import LimitLearner
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.reuse import StoredAnswer
from lm_deluge_cli.providers import Adapter, Endpoint
from lm_deluge_cli.transport import Transport
from lm_deluge_cli.types import Prompt, SamplingParams

__all__ = ["ModelSlot", "Plan"]


@dataclass(slots=True)
class ModelSlot:
    """A model the run can send to, with its own transport and optional limiter."""

    endpoint: Endpoint
    adapter: Adapter
    transport: Transport
    weight: float
    sampling: SamplingParams
    # The model's own limiter (if it has limits) then the run's: acquired in that order.
    limits: LimiterChain
    # Per limiter of `limits`: whether this model's rate-limit headers describe its budget.
    headers_describe: tuple[bool, ...]
    # Set when the provider refused the key or quota: no more requests go here.
    dead_reason: str | None = None
    # Learns the model's "auto" limits (and applies them to limits.limiters[0]).
    learner: LimitLearner | None = None


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
