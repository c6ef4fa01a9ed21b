"""The shared contract: endpoints keep the key out of sight, options are checked."""

from __future__ import annotations

import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.retrieval import EmbedOptions, OpenAIEmbedAdapter, VoyageEmbedAdapter

from .support import KEY, embed_endpoint


def test_endpoint_repr_hides_the_key() -> None:
    endpoint = embed_endpoint("voyage-3.5")
    assert endpoint.api_key == KEY
    assert KEY not in repr(endpoint)
    assert KEY not in str(endpoint)


def test_unknown_input_type_is_a_config_error() -> None:
    options = EmbedOptions(input_type="classification")
    with pytest.raises(ConfigError, match="document or query"):
        VoyageEmbedAdapter().build_request(embed_endpoint("voyage-3.5"), ["x"], options, 1.0)
    # OpenAI sends no input_type, so it has nothing to refuse.
    OpenAIEmbedAdapter().build_request(
        embed_endpoint("text-embedding-3-small"), ["x"], options, 1.0
    )
