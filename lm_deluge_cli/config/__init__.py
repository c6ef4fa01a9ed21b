"""Job file + flags → a frozen `Job`: what a job holds and its defaults (`fields`), how a job
file and flags are read (`load`), the [limits] table (`limits`), what requests carry and how
they run (`requests`), and the checks they share (`checks`)."""

from lm_deluge_cli.config.fields import (
    AUTO,
    AUTO_FALLBACK_REQUESTS_PER_MINUTE,
    AUTO_FALLBACK_TOKENS_PER_MINUTE,
    DEFAULT_FSYNC,
    DEFAULT_LIMITER_KEY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_REQUESTS_PER_MINUTE,
    DEFAULT_MAX_ROUNDS,
    DEFAULT_MAX_TOKENS_PER_MINUTE,
    DEFAULT_PROMPT_CACHE_WARMUP_S,
    DEFAULT_REQUEST_TIMEOUT_S,
    FSYNC_POLICIES,
    STDIO,
    UNLIMITED,
    CacheConfig,
    Job,
    JobOverrides,
    Limits,
    ModelEntry,
    Rate,
)
from lm_deluge_cli.config.load import load_job, parse_model_flag, validate_sampling
from lm_deluge_cli.sampling import REASONING_EFFORTS, check_sampling_value, describe_value

__all__ = [
    "AUTO",
    "AUTO_FALLBACK_REQUESTS_PER_MINUTE",
    "AUTO_FALLBACK_TOKENS_PER_MINUTE",
    "DEFAULT_FSYNC",
    "DEFAULT_LIMITER_KEY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CONCURRENT_REQUESTS",
    "DEFAULT_MAX_REQUESTS_PER_MINUTE",
    "DEFAULT_MAX_ROUNDS",
    "DEFAULT_MAX_TOKENS_PER_MINUTE",
    "DEFAULT_PROMPT_CACHE_WARMUP_S",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "FSYNC_POLICIES",
    "REASONING_EFFORTS",
    "STDIO",
    "UNLIMITED",
    "CacheConfig",
    "Job",
    "JobOverrides",
    "Limits",
    "ModelEntry",
    "Rate",
    "check_sampling_value",
    "describe_value",
    "load_job",
    "parse_model_flag",
    "validate_sampling",
]
