"""Which event loop runs: uvloop where installed, else asyncio's; the environment decides."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.transport import event_loop
from lm_deluge_cli.transport.event_loop import backend_options, loop_factory

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


@pytest.mark.parametrize(
    ("kind", "env", "chosen"),
    [
        (None, None, "uvloop" if HAVE_UVLOOP else "asyncio"),
        (None, "", "uvloop" if HAVE_UVLOOP else "asyncio"),
        (None, "asyncio", "asyncio"),
        ("asyncio", None, "asyncio"),
        # An explicit kind beats the environment.
        ("asyncio", "uvloop", "asyncio"),
    ],
)
def test_the_loop_chosen(
    monkeypatch: pytest.MonkeyPatch, kind: str | None, env: str | None, chosen: str
) -> None:
    if env is None:
        monkeypatch.delenv("LM_DELUGE_EVENT_LOOP", raising=False)
    else:
        monkeypatch.setenv("LM_DELUGE_EVENT_LOOP", env)
    assert event_loop.event_loop(kind) == chosen
    assert backend_options(kind) == {"use_uvloop": chosen == "uvloop"}
    loop = loop_factory(kind)()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert ("uvloop" in type(loop).__module__) is (chosen == "uvloop")
    finally:
        loop.close()


def test_an_unknown_loop_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LM_DELUGE_EVENT_LOOP", "trio")
    with pytest.raises(ConfigError) as info:
        event_loop.event_loop()
    assert "'trio'" in str(info.value) and "uvloop" in str(info.value)


def test_without_uvloop_the_standard_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.delenv("LM_DELUGE_EVENT_LOOP", raising=False)
    assert event_loop.event_loop() == "asyncio"
    # Asked for by name, its absence is said plainly.
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        event_loop.event_loop("uvloop")
