"""`lm-deluge mock-server`: serve a mock of every supported provider API on a local port."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.faults import BODY_FAULTS, WIRE_FAULTS
from lm_deluge_cli.mock.formats import BASE_PATHS
from lm_deluge_cli.mock.server import MockServer, run
from lm_deluge_cli.mock.simulator import MockSettings
from lm_deluge_cli.providers.registry import load_registry

__all__ = ["mock_server"]


def mock_server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on; 0 picks a free one.", min=0, max=65535)
    ] = 0,
    latency: Annotated[
        float, typer.Option("--latency", help="Seconds before each answer.", min=0.0)
    ] = 0.0,
    latency_jitter: Annotated[
        float,
        typer.Option("--latency-jitter", help="Up to this many extra seconds, random.", min=0.0),
    ] = 0.0,
    rpm: Annotated[
        float | None, typer.Option("--rpm", help="Requests per minute limit.", min=0.0)
    ] = None,
    tpm: Annotated[
        float | None, typer.Option("--tpm", help="Tokens per minute limit.", min=0.0)
    ] = None,
    burst_seconds: Annotated[
        float,
        typer.Option("--burst-seconds", help="Seconds of each limit a burst may use.", min=0.0),
    ] = 1.0,
    charge_refusals: Annotated[
        bool, typer.Option("--charge-refusals", help="Refused requests still use up quota.")
    ] = False,
    no_rate_limit_headers: Annotated[
        bool, typer.Option("--no-rate-limit-headers", help="Send no rate-limit headers.")
    ] = False,
    no_retry_after: Annotated[
        bool, typer.Option("--no-retry-after", help="Say no wait on 429s (retry-after, …).")
    ] = False,
    error_rate: Annotated[
        float,
        typer.Option(
            "--error-rate", help="Fraction answered with an internal error.", min=0.0, max=1.0
        ),
    ] = 0.0,
    overload_rate: Annotated[
        float,
        typer.Option(
            "--overload-rate",
            help="Fraction answered as overloaded (529, 503, …).",
            min=0.0,
            max=1.0,
        ),
    ] = 0.0,
    drop_rate: Annotated[
        float,
        typer.Option("--drop-rate", help="Fraction closed without an answer.", min=0.0, max=1.0),
    ] = 0.0,
    hang_rate: Annotated[
        float, typer.Option("--hang-rate", help="Fraction never answered.", min=0.0, max=1.0)
    ] = 0.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="NAME=RATE",
            help=(
                "Inject a fault into this fraction of requests; repeat for several. NAME is an "
                "HTTP status from 400 to 599 (the provider's own error for it) or one of "
                f"{', '.join(WIRE_FAULTS + BODY_FAULTS)} (schema_violation: JSON that breaks "
                "the schema the request asks for; empty_answer: no text and no tool call; "
                "invalid_tool_arguments: tool-call arguments that are not JSON). Example: "
                "--fault 502=0.3 --fault reset_mid_body=0.1"
            ),
        ),
    ] = None,
    fault_first_n: Annotated[
        int | None,
        typer.Option(
            "--fault-first-n",
            metavar="N",
            min=0,
            help="Only the first N requests can fail (every injected failure); later ones "
            "are answered normally.",
        ),
    ] = None,
    slow_body_seconds: Annotated[
        float,
        typer.Option(
            "--slow-body-seconds", min=0.0, help="How long a slow_body fault takes to send."
        ),
    ] = 5.0,
    huge_body_bytes: Annotated[
        int,
        typer.Option("--huge-body-bytes", min=0, help="The completion size of a huge_body fault."),
    ] = 20_000_000,
    tool_rounds: Annotated[
        int,
        typer.Option(
            "--tool-rounds",
            metavar="N",
            min=0,
            help=(
                "With tools on auto, a conversation calls tools in up to N turns (its own "
                "number, 1 to N, from its first message), then answers in text; 0: never."
            ),
        ),
    ] = 1,
    prompt_cache_min_tokens: Annotated[
        int,
        typer.Option(
            "--prompt-cache-min-tokens",
            metavar="N",
            min=0,
            help="The shortest prompt prefix Anthropic's prompt cache keeps (Messages, Bedrock).",
        ),
    ] = 1024,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            metavar="NAME",
            help=(
                "Require the API key held in this environment variable (for Bedrock, the "
                "access key id); others are refused."
            ),
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the random draws.")] = 0,
) -> None:
    """Serve mock provider APIs with rate limits and injected failures.

    One server speaks OpenAI, Anthropic, Gemini, Mistral, Cohere and Bedrock (and their
    embeddings and rerank APIs, with Voyage's and Jina's), each under its own path prefix:
    tool calls, reasoning, several answers and Anthropic's prompt cache included.
    Prints one line, ``listening on URL`` (the OpenAI base URL), on stdout once ready, and
    each provider's base URL on stderr. Stop it with Ctrl-C.
    """
    api_key = None
    if api_key_env is not None:
        # The key comes from the environment, never from argv, where `ps` would show it.
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise typer.BadParameter(
                f"{api_key_env} is not set in the environment; export it first",
                param_hint="'--api-key-env'",
            )
    faults = _parse_faults(fault or [])
    try:
        settings = MockSettings(
            latency_s=latency,
            latency_jitter_s=latency_jitter,
            requests_per_minute=rpm,
            tokens_per_minute=tpm,
            burst_s=burst_seconds,
            charge_refusals=charge_refusals,
            rate_limit_headers=not no_rate_limit_headers,
            retry_after=not no_retry_after,
            error_rate=error_rate,
            overload_rate=overload_rate,
            drop_rate=drop_rate,
            hang_rate=hang_rate,
            faults=faults,
            fault_first_n=fault_first_n,
            slow_body_s=slow_body_seconds,
            huge_body_bytes=huge_body_bytes,
            tool_rounds=tool_rounds,
            prompt_cache_min_tokens=prompt_cache_min_tokens,
            api_key=api_key,
            seed=seed,
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc

    def announce(server: MockServer) -> None:
        # Exactly one line on stdout, flushed at once: scripts and tests read the port from it.
        sys.stdout.write(f"listening on {server.url}\n")
        sys.stdout.flush()
        # Each provider's base URL, and the variable that points it there (the registry's).
        registry = load_registry()
        for provider in BASE_PATHS:
            # Providers served only for embeddings and rerank may have no registry entry yet.
            info = registry.providers.get(provider)
            variable = (info.base_url_env if info else "") or "base_url in the job file"
            typer.echo(f"  {provider:<9} {server.base_url(provider)}  ({variable})", err=True)

    try:
        stats = run(settings, host, port, on_ready=announce)
    except OSError as exc:
        raise typer.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    typer.echo(
        f"served {stats.requests_seen} requests: {stats.ok} ok, {stats.rate_limited} rate "
        f"limited, {stats.errors} errors, {stats.dropped} dropped, {stats.hung} hung, "
        f"{stats.malformed} malformed",
        err=True,
    )
    if stats.cache_read_tokens or stats.cache_write_tokens:
        typer.echo(
            f"prompt cache: {stats.cache_read_tokens} tokens read, "
            f"{stats.cache_write_tokens} written",
            err=True,
        )


def _parse_faults(values: list[str]) -> dict[str, float]:
    """``["502=0.3", "html=0.1"]`` → ``{"502": 0.3, "html": 0.1}``; MockSettings checks names."""
    faults: dict[str, float] = {}
    for value in values:
        name, equals, rate = value.partition("=")
        try:
            if not equals:
                raise ValueError
            number = float(rate)
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not NAME=RATE (e.g. 502=0.3 or reset_mid_body=0.1)",
                param_hint="'--fault'",
            ) from None
        if name.strip() in faults:
            raise typer.BadParameter(f"{name.strip()} is given twice", param_hint="'--fault'")
        faults[name.strip()] = number
    return faults
