"""Anthropic models on Amazon Bedrock (InvokeModel), signed with AWS Signature Version 4.

The body is the Anthropic Messages body (built by `anthropic_messages`) with Bedrock's
`anthropic_version` and without `model`, which goes in the URL. Credentials come from the
standard AWS environment variables; the region from the model entry, the base URL or the
environment.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

import orjson

from lm_deluge_cli.errors import (
    APIStatusError,
    AuthenticationError,
    InternalServerError,
    MissingAPIKeyError,
    MissingCredentialsError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    status_error_class,
)
from lm_deluge_cli.headers import parse_retry_after
from lm_deluge_cli.providers.anthropic_messages import (
    max_output_tokens,
    messages_body,
    parse_message,
)
from lm_deluge_cli.providers.base import Endpoint, error_object, error_text
from lm_deluge_cli.redaction import redact_keys
from lm_deluge_cli.results import Completion
from lm_deluge_cli.types import HttpRequest, HttpResponse, Prompt, RateLimitInfo, SamplingParams

__all__ = [
    "BEDROCK_ANTHROPIC_VERSION",
    "DEFAULT_REGION",
    "WIRE_FORMAT",
    "AwsCredentials",
    "BedrockAnthropicAdapter",
    "SignedRequest",
    "credentials_from_env",
    "max_output_tokens",
    "resolve_region",
    "sign_v4",
    "signing_key",
]

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
# The wire format this adapter speaks: the tag of the thinking blocks it keeps and sends back.
WIRE_FORMAT = "bedrock_anthropic"
SERVICE = "bedrock"
DEFAULT_REGION = "us-east-1"
# A base URL may leave the region to the environment: https://bedrock-runtime.{region}.amazonaws.com
REGION_PLACEHOLDER = "{region}"
_ALGORITHM = "AWS4-HMAC-SHA256"
# bedrock-runtime[-fips].REGION.amazonaws.com, also behind a VPC endpoint or in China.
_REGION_IN_HOST = re.compile(
    r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.(?:vpce\.)?amazonaws\.com(?:\.cn)?$"
)
# The model id goes into the path with every character a URL may carry in a path segment left
# as it is ("anthropic.claude-3-5-sonnet-20240620-v1:0"), so that httpx and aiohttp both send
# exactly the path that was signed (aiohttp would decode "%3A" back to ":"); "/" in an
# inference-profile ARN is still escaped.
_PATH_SAFE = "!$&'()*+,;=:@"
# x-amzn-ErrorType names whose meaning holds whatever the status: the credentials or their
# rights, which no retry will fix, and the types worth retrying (ServiceQuotaExceeded is a
# 400 that Bedrock documents as "resubmit later").
_TYPE_CLASSES: dict[str, type[APIStatusError]] = {
    "AccessDeniedException": PermissionDeniedError,
    "UnrecognizedClientException": AuthenticationError,
    "InvalidSignatureException": AuthenticationError,
    "IncompleteSignature": AuthenticationError,
    "ExpiredTokenException": AuthenticationError,
    "MissingAuthenticationTokenException": AuthenticationError,
    "ThrottlingException": RateLimitError,
    "ServiceQuotaExceededException": RateLimitError,
    "ModelNotReadyException": RateLimitError,
    "ModelTimeoutException": RequestTimeoutError,
    "ServiceUnavailableException": InternalServerError,
    "InternalServerException": InternalServerError,
}


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """An AWS access key, with the session token of temporary credentials.

    The secret and the token are excluded from repr so they cannot leak through logs.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def credentials_from_env(env: Mapping[str, str], model: str = "bedrock") -> AwsCredentials:
    """Credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.

    Raises MissingAPIKeyError naming every missing variable (`model` names the model).
    """
    values = {
        name: (env.get(name) or "").strip()
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    missing = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not values[name]]
    if missing:
        raise MissingAPIKeyError(" and ".join(missing), model)
    return AwsCredentials(
        values["AWS_ACCESS_KEY_ID"],
        values["AWS_SECRET_ACCESS_KEY"],
        values["AWS_SESSION_TOKEN"] or None,
    )


def resolve_region(
    base_url: str, env: Mapping[str, str], region: str | None = None
) -> tuple[str, str]:
    """(base URL, region): the model entry's `region`, else the region in a bedrock-runtime
    host, else AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1. The chosen region fills
    a ``{region}`` placeholder in the base URL."""
    if region is None:
        match = _REGION_IN_HOST.search(urlsplit(base_url).hostname or "")
        region = match.group(1) if match else None
    if region is None:
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return base_url.replace(REGION_PLACEHOLDER, region), region


class BedrockAnthropicAdapter:
    """Builds signed InvokeModel requests for Anthropic models and reads their responses.

    `credentials` default to the AWS variables of `env` (default: os.environ), read for
    each request; `clock` (seconds since the epoch) dates the signature.
    """

    def __init__(
        self,
        credentials: AwsCredentials | None = None,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._env = env
        self._clock = clock

    def build_request(
        self, endpoint: Endpoint, prompt: Prompt, sampling: SamplingParams, timeout: float
    ) -> HttpRequest:
        env = os.environ if self._env is None else self._env
        try:
            credentials = self._credentials or credentials_from_env(env, endpoint.name)
        except MissingAPIKeyError as exc:
            # Every request of this model would fail the same way: stop using it.
            raise MissingCredentialsError(str(exc)) from None
        base_url, region = resolve_region(endpoint.base_url, env, endpoint.region)
        # Bedrock takes no URL sources, only base64 ones: image URLs are refused, and file
        # parts only ever become base64 (PDF) or text document sources.
        body = messages_body(endpoint, prompt, sampling, url_images=False, wire_format=WIRE_FORMAT)
        body["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
        raw = orjson.dumps(body)
        url = f"{base_url}/model/{quote(endpoint.model.wire_id, safe=_PATH_SAFE)}/invoke"
        headers = {"content-type": "application/json", "accept": "application/json"}
        now = datetime.datetime.fromtimestamp(self._clock(), datetime.UTC)
        signed = sign_v4("POST", url, headers, raw, credentials, region, SERVICE, now)
        return HttpRequest("POST", url, {**headers, **signed.headers}, raw, timeout)

    def parse_response(self, endpoint: Endpoint, response: HttpResponse) -> Completion:
        secrets = self._secrets(endpoint)
        # Every secret is cut from the body before anything can quote it (a snippet cut
        # short could otherwise show the start of a long session token), also as JSON may
        # escape it.
        body = response.body
        for secret in secrets:
            for form in (secret, secret.replace("/", "\\/")):
                body = body.replace(form.encode(), b"[redacted]")
        clean = HttpResponse(response.status, response.headers, body)
        if clean.status >= 300:
            raise _status_error(clean, secrets)
        return parse_message(clean, None, "Bedrock response", wire_format=WIRE_FORMAT)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        # Bedrock sends no rate-limit headers; its quotas show only as throttling errors.
        return RateLimitInfo()

    def _secrets(self, endpoint: Endpoint) -> list[str]:
        """Every secret a response could echo: the key, the token, the endpoint's api_key."""
        credentials = self._credentials
        if credentials is None:
            env = os.environ if self._env is None else self._env
            found = [env.get("AWS_SECRET_ACCESS_KEY"), env.get("AWS_SESSION_TOKEN")]
        else:
            found = [credentials.secret_access_key, credentials.session_token]
        return [s for s in (*found, endpoint.api_key) if s]


def _status_error(response: HttpResponse, secrets: list[str]) -> APIStatusError:
    message, _ = error_text(response.body, None)
    # Again after JSON decoding, for a secret the body held with other escapes ("\u002b").
    for secret in secrets:
        message = redact_keys(message, secret)
    error_type = _error_type(response.headers.get("x-amzn-errortype")) or _body_type(response.body)
    label = f"{response.status}: {error_type}: " if error_type else f"{response.status}: "
    cls = status_error_class(response.status)
    named = _TYPE_CLASSES.get(error_type or "")
    # The type tells what the status may not: credentials no retry will fix, or "later".
    already = named is not None and (
        (named.fatal and cls.fatal) or (named.retryable and cls.retryable)
    )
    if named is not None and not already:
        cls = named
    return cls(
        label + message,
        status_code=response.status,
        retry_after=parse_retry_after(response.headers),
        code=error_type,
    )


def _error_type(raw: str | None) -> str | None:
    """The exception name in "ThrottlingException:http://internal.amazon.com/…" or in a
    body's "com.amazon.coral.service#UnrecognizedClientException"."""
    if not raw:
        return None
    return raw.split(":", 1)[0].rpartition("#")[2].strip() or None


def _body_type(body: bytes) -> str | None:
    """The exception name in an AWS JSON error body's ``__type``, when the header is missing."""
    raw = error_object(body).get("__type")
    return _error_type(raw) if isinstance(raw, str) else None


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The headers to add to a request, and the intermediate strings (for tests and logs)."""

    headers: dict[str, str]
    canonical_request: str
    string_to_sign: str


def sign_v4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime.datetime,
) -> SignedRequest:
    """Sign a request with AWS Signature Version 4 (the Authorization header form).

    Every header in `headers` is signed, with `host` (from the URL), `x-amz-date` (from
    `now`) and the session token if any. The returned headers are the ones to add: all but
    `host`, which HTTP clients set from the URL themselves. The path is signed as it
    appears in `url`, encoded once more, as SigV4 wants for every service but S3.
    """
    amz_date = now.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    parts = urlsplit(url)
    added = {"x-amz-date": amz_date}
    if credentials.session_token:
        added["x-amz-security-token"] = credentials.session_token
    signed = {name.lower(): value for name, value in headers.items()}
    signed.update(added, host=parts.netloc)
    names = sorted(signed)
    # Header values are trimmed and inner runs of spaces collapsed to one.
    canonical_headers = "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        [
            method.upper(),
            quote(parts.path or "/", safe="/~"),
            _canonical_query(parts.query),
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"{_ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    key = signing_key(credentials.secret_access_key, amz_date[:8], region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    added["authorization"] = (
        f"{_ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return SignedRequest(added, canonical_request, string_to_sign)


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key for a day (``YYYYMMDD``), region and service."""
    key = f"AWS4{secret_access_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _canonical_query(query: str) -> str:
    """Parameters sorted by name then value, each name and value URI-encoded (RFC 3986)."""
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    encoded = sorted(
        (quote(unquote(name), safe="~"), quote(unquote(value), safe="~"))
        for name, _, value in pairs
    )
    return "&".join(f"{name}={value}" for name, value in encoded)
