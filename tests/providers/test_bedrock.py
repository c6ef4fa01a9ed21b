"""The Bedrock adapter: SigV4 against AWS's published vectors, InvokeModel bodies and errors.

fixtures/bedrock/sigv4_test_suite.json holds vectors of the AWS Signature Version 4 test
suite and the worked IAM example of the AWS signing guide; the other fixtures are the
InvokeModel body and response of the Bedrock user guide's Anthropic pages, and the error
responses its API reference documents (exception name in x-amzn-ErrorType, {"message"}).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import yarl

from lm_deluge_cli.errors import (
    APIError,
    APIResponseValidationError,
    APIStatusError,
    BadRequestError,
    InternalServerError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
)
from lm_deluge_cli.providers.base import Adapter, Endpoint
from lm_deluge_cli.providers.bedrock import (
    BEDROCK_ANTHROPIC_VERSION,
    AwsCredentials,
    BedrockAnthropicAdapter,
    credentials_from_env,
    resolve_region,
    sign_v4,
    signing_key,
)
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo
from lm_deluge_cli.results import Answer, Completion, Reasoning, Usage
from lm_deluge_cli.types import HttpResponse, Prompt, RateLimitInfo, SamplingParams

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"
SUITE: dict[str, Any] = orjson.loads((FIXTURES / "sigv4_test_suite.json").read_bytes())
SUITE_DATE = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.UTC)

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY-canary"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD-canary-token"
CREDENTIALS = AwsCredentials("AKIAIOSFODNN7EXAMPLE", SECRET)
TEMPORARY = AwsCredentials("ASIAIOSFODNN7EXAMPLE", SECRET, TOKEN)
MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
BASE_URL = "https://bedrock-runtime.us-west-2.amazonaws.com"
PROVIDER = ProviderInfo(
    name="bedrock",
    wire_format="bedrock",
    base_url="https://bedrock-runtime.{region}.amazonaws.com",
    base_url_env="",
    api_key_env="AWS_SECRET_ACCESS_KEY",
)
# 2024-06-20T10:00:00Z
NOW = datetime.datetime(2024, 6, 20, 10, tzinfo=datetime.UTC).timestamp()


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def adapter(credentials: AwsCredentials | None = CREDENTIALS) -> BedrockAnthropicAdapter:
    return BedrockAnthropicAdapter(credentials, env={}, clock=lambda: NOW)


def endpoint(
    wire_id: str = MODEL_ID, *, base_url: str = BASE_URL, reasoning: bool = False
) -> Endpoint:
    model = ModelInfo(f"bedrock:{wire_id}", "bedrock", wire_id, reasoning=reasoning)
    return Endpoint(model.id, model, PROVIDER, base_url, api_key=SECRET)


def prompt(messages: list[dict[str, Any]]) -> Prompt:
    return Prompt(id=1, line=1, messages=messages)


HELLO = [{"role": "user", "content": "Hello world"}]


def test_it_is_an_adapter() -> None:
    built: Adapter = adapter()
    assert isinstance(built, BedrockAnthropicAdapter)


# --- SigV4 against the published vectors -----------------------------------------------


@pytest.mark.parametrize("vector", SUITE["vectors"], ids=lambda v: v["name"])
def test_sigv4_published_vectors(vector: dict[str, Any]) -> None:
    request = vector["request"]
    credentials = AwsCredentials(
        SUITE["credentials"]["access_key_id"],
        SUITE["credentials"]["secret_access_key"],
        vector["session_token"],
    )
    signed = sign_v4(
        request["method"],
        request["url"],
        request["headers"],
        request["body"].encode(),
        credentials,
        SUITE["region"],
        vector["service"],
        SUITE_DATE,
    )
    assert signed.canonical_request == vector["canonical_request"]
    assert signed.string_to_sign == vector["string_to_sign"]
    assert signed.headers["authorization"] == vector["authorization"]
    assert signed.headers["x-amz-date"] == SUITE["date"]
    assert signed.headers.get("x-amz-security-token") == vector["session_token"]
    # Clients set Host from the URL; sending it too would risk two of them.
    assert "host" not in signed.headers


def test_signing_key_of_the_documented_example() -> None:
    secret = SUITE["credentials"]["secret_access_key"]
    assert signing_key(secret, "20150830", "us-east-1", "iam").hex() == SUITE["iam_signing_key"]


def test_the_signature_date_is_utc_whatever_the_zone_of_now() -> None:
    vector = SUITE["vectors"][0]
    credentials = AwsCredentials(**SUITE["credentials"])
    tokyo = SUITE_DATE.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
    signed = sign_v4(
        "GET", vector["request"]["url"], {}, b"", credentials, "us-east-1", "service", tokyo
    )
    assert signed.headers["authorization"] == vector["authorization"]


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        # The path is signed encoded once more than it is sent, as every service but S3 wants.
        ("/model/anthropic.claude-v2:1/invoke", "/model/anthropic.claude-v2%3A1/invoke"),
        ("/model/a%2Fb/invoke", "/model/a%252Fb/invoke"),
        ("/model/x~y_z-1.0/invoke", "/model/x~y_z-1.0/invoke"),
        ("", "/"),
    ],
)
def test_canonical_path(path: str, canonical: str) -> None:
    url = f"https://bedrock-runtime.us-east-1.amazonaws.com{path}"
    signed = sign_v4("POST", url, {}, b"", CREDENTIALS, "us-east-1", "bedrock", SUITE_DATE)
    assert signed.canonical_request.split("\n")[1] == canonical


def test_header_values_are_trimmed_and_their_spaces_collapsed() -> None:
    headers = {"My-Header1": "  a   b \t c  ", "Content-Type": "application/json"}
    signed = sign_v4("POST", "https://h/", headers, b"", CREDENTIALS, "r", "s", SUITE_DATE)
    lines = signed.canonical_request.split("\n")
    assert "my-header1:a b c" in lines
    assert "content-type;host;my-header1;x-amz-date" in lines


# --- build_request ---------------------------------------------------------------------


def test_build_request_matches_the_documented_invoke_body() -> None:
    request = adapter().build_request(
        endpoint(), prompt(HELLO), SamplingParams(max_new_tokens=1024), 30.0
    )
    assert request.method == "POST"
    assert request.url == f"{BASE_URL}/model/{MODEL_ID}/invoke"
    assert request.timeout == 30.0
    assert orjson.loads(request.body) == {**fixture("invoke_request"), "temperature": 0.0}
    assert set(request.headers) == {"content-type", "accept", "x-amz-date", "authorization"}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-amz-date"] == "20240620T100000Z"
    assert request.headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240620/us-west-2/bedrock/aws4_request, "
        "SignedHeaders=accept;content-type;host;x-amz-date, Signature="
    )


def test_the_signature_covers_exactly_what_is_sent() -> None:
    request = adapter(TEMPORARY).build_request(endpoint(), prompt(HELLO), SamplingParams(), 5.0)
    assert request.headers["x-amz-security-token"] == TOKEN
    unsigned = {k: v for k, v in request.headers.items() if k in ("content-type", "accept")}
    now = datetime.datetime.fromtimestamp(NOW, datetime.UTC)
    again = sign_v4(
        "POST", request.url, unsigned, request.body, TEMPORARY, "us-west-2", "bedrock", now
    )
    assert again.headers["authorization"] == request.headers["authorization"]
    assert "x-amz-security-token" in again.canonical_request


@pytest.mark.parametrize(
    ("wire_id", "path"),
    [
        (MODEL_ID, f"/model/{MODEL_ID}/invoke"),
        (
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "/model/us.anthropic.claude-3-7-sonnet-20250219-v1:0/invoke",
        ),
        # An inference-profile ARN: its "/" must not split the path.
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v1:0",
            "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.anthropic"
            ".claude-v1:0/invoke",
        ),
        ("odd id+é", "/model/odd%20id+%C3%A9/invoke"),
    ],
)
def test_the_model_id_is_in_the_path_as_every_http_client_sends_it(wire_id: str, path: str) -> None:
    request = adapter().build_request(endpoint(wire_id), prompt(HELLO), SamplingParams(), 5.0)
    assert urlsplit(request.url).path == path
    # httpx and aiohttp (yarl) must not re-encode or decode it, or the signature breaks.
    assert httpx.URL(request.url).raw_path.decode() == path
    assert yarl.URL(request.url).raw_path == path
    assert "model" not in orjson.loads(request.body)


def test_body_fields_come_from_the_anthropic_translation() -> None:
    messages = [{"role": "system", "content": "Be terse."}, *HELLO]
    sampling = SamplingParams(reasoning_effort="medium", json_mode=True)
    request = adapter().build_request(endpoint(reasoning=True), prompt(messages), sampling, 5.0)
    sent = orjson.loads(request.body)
    assert sent["anthropic_version"] == BEDROCK_ANTHROPIC_VERSION
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert sent["max_tokens"] == 4096 + 512
    assert sent["system"].startswith("Be terse.\n\n")
    assert "temperature" not in sent


def test_bedrock_takes_no_image_urls() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(APIError, match="only as base64 data: URLs") as info:
        adapter().build_request(
            endpoint(), prompt([{"role": "user", "content": [image]}]), SamplingParams(), 5.0
        )
    assert not info.value.retryable and not info.value.fatal
    data = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    request = adapter().build_request(
        endpoint(), prompt([{"role": "user", "content": [data]}]), SamplingParams(), 5.0
    )
    block = orjson.loads(request.body)["messages"][0]["content"][0]
    assert block["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


def test_bedrock_takes_files_as_base64_and_text_sources() -> None:
    # Claude on Bedrock reads document blocks, but no URL or Files API sources.
    pdf = {"file_data": "data:application/pdf;base64,JVBERi0xLjQKJSVFT0YK", "filename": "a.pdf"}
    text = {"file_data": "data:text/csv;base64,YSxiCjEsMgo=", "filename": "t.csv"}
    content = [{"type": "file", "file": pdf}, {"type": "file", "file": text}]
    request = adapter().build_request(
        endpoint(), prompt([{"role": "user", "content": content}]), SamplingParams(), 5.0
    )
    sent = orjson.loads(request.body)
    assert sent["anthropic_version"] == BEDROCK_ANTHROPIC_VERSION
    assert sent["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {
                "type": "base64",
                "media_type": "application/pdf",
                "data": "JVBERi0xLjQKJSVFT0YK",
            },
            "title": "a.pdf",
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "a,b\n1,2\n"},
            "title": "t.csv",
        },
    ]


def test_bedrock_cannot_read_openai_uploads() -> None:
    upload = {"type": "file", "file": {"file_id": "file-abc"}}
    with pytest.raises(APIError, match="OpenAI upload") as info:
        adapter().build_request(
            endpoint(), prompt([{"role": "user", "content": [upload]}]), SamplingParams(), 5.0
        )
    assert not info.value.retryable and not info.value.fatal


def test_credentials_default_to_the_environment() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "eu-central-1",
    }
    built = BedrockAnthropicAdapter(env=env, clock=lambda: NOW)
    target = endpoint(base_url=PROVIDER.base_url)
    request = built.build_request(target, prompt(HELLO), SamplingParams(), 5.0)
    assert request.url.startswith("https://bedrock-runtime.eu-central-1.amazonaws.com/model/")
    assert "/eu-central-1/bedrock/aws4_request" in request.headers["authorization"]


def test_missing_credentials_stop_the_model() -> None:
    built = BedrockAnthropicAdapter(env={"AWS_ACCESS_KEY_ID": "AKIA"}, clock=lambda: NOW)
    with pytest.raises(APIError) as info:
        built.build_request(endpoint(), prompt(HELLO), SamplingParams(), 5.0)
    assert info.value.fatal
    assert not info.value.retryable
    assert "AWS_SECRET_ACCESS_KEY" in str(info.value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"AWS_ACCESS_KEY_ID": " AKIA ", "AWS_SECRET_ACCESS_KEY": "s3cret\n"},
            AwsCredentials("AKIA", "s3cret"),
        ),
        (
            {"AWS_ACCESS_KEY_ID": "ASIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"},
            AwsCredentials("ASIA", "s", "t"),
        ),
        (
            {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": ""},
            AwsCredentials("AKIA", "s"),
        ),
    ],
)
def test_credentials_from_env(env: dict[str, str], expected: AwsCredentials) -> None:
    assert credentials_from_env(env) == expected


@pytest.mark.parametrize(
    ("env", "variables"),
    [
        ({}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        ({"AWS_ACCESS_KEY_ID": "AKIA"}, "AWS_SECRET_ACCESS_KEY"),
        ({"AWS_SECRET_ACCESS_KEY": "s", "AWS_ACCESS_KEY_ID": "  "}, "AWS_ACCESS_KEY_ID"),
    ],
)
def test_missing_credentials_name_their_variables(env: dict[str, str], variables: str) -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        credentials_from_env(env, "bedrock:claude")
    assert info.value.variable == variables
    assert info.value.model == "bedrock:claude"


def test_credentials_keep_secrets_out_of_repr() -> None:
    text = repr(TEMPORARY)
    assert "AKIAIOSFODNN7EXAMPLE" not in text  # the temporary key is ASIA…
    assert "ASIAIOSFODNN7EXAMPLE" in text
    assert SECRET not in text
    assert TOKEN not in text


@pytest.mark.parametrize(
    ("base_url", "env", "expected"),
    [
        (BASE_URL, {}, (BASE_URL, "us-west-2")),
        (BASE_URL, {"AWS_REGION": "eu-west-1"}, (BASE_URL, "us-west-2")),
        (
            "https://bedrock-runtime.{region}.amazonaws.com",
            {"AWS_REGION": "ap-northeast-1", "AWS_DEFAULT_REGION": "eu-west-1"},
            ("https://bedrock-runtime.ap-northeast-1.amazonaws.com", "ap-northeast-1"),
        ),
        (
            "https://bedrock-runtime.{region}.amazonaws.com",
            {"AWS_DEFAULT_REGION": "eu-west-1"},
            ("https://bedrock-runtime.eu-west-1.amazonaws.com", "eu-west-1"),
        ),
        (
            "https://bedrock-runtime.{region}.amazonaws.com",
            {},
            ("https://bedrock-runtime.us-east-1.amazonaws.com", "us-east-1"),
        ),
        (
            "https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com",
            {},
            ("https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ),
        (
            "https://vpce-0a1b2c.bedrock-runtime.eu-central-1.vpce.amazonaws.com",
            {},
            ("https://vpce-0a1b2c.bedrock-runtime.eu-central-1.vpce.amazonaws.com", "eu-central-1"),
        ),
        (
            "https://bedrock-runtime.cn-north-1.amazonaws.com.cn",
            {},
            ("https://bedrock-runtime.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ),
        # A proxy in front of Bedrock: the region comes from the environment.
        (
            "http://127.0.0.1:9000",
            {"AWS_REGION": "us-east-2"},
            ("http://127.0.0.1:9000", "us-east-2"),
        ),
    ],
)
def test_resolve_region(base_url: str, env: dict[str, str], expected: tuple[str, str]) -> None:
    assert resolve_region(base_url, env) == expected


# --- parse_response --------------------------------------------------------------------


def test_parse_the_documented_response() -> None:
    response = HttpResponse(200, {}, orjson.dumps(fixture("invoke_response")))
    answer = Answer(
        "Hello! How can I assist you today?",
        finish_reason="stop",
        provider_finish_reason="end_turn",
    )
    assert adapter().parse_response(endpoint(), response) == Completion((answer,), Usage(9, 12))


def test_thinking_blocks_are_tagged_as_bedrocks() -> None:
    raw = {
        **fixture("invoke_response"),
        "content": [
            {"type": "thinking", "thinking": "Hm.", "signature": "EqQBCgIYAhIM"},
            {"type": "text", "text": "Hi."},
        ],
    }
    answer = adapter().parse_response(endpoint(), HttpResponse(200, {}, orjson.dumps(raw))).answer
    assert answer.reasoning == Reasoning(
        "Hm.", ({"format": "bedrock_anthropic", "block": raw["content"][0]},)
    )


def test_bedrock_sends_no_rate_limit_headers() -> None:
    headers = {"x-amzn-bedrock-input-token-count": "9", "x-amzn-requestid": "abc"}
    assert adapter().rate_limit_info(headers) == RateLimitInfo()


@pytest.mark.parametrize("raw", [b"", b"{}", b'{"content": "text"}', b'{"message": "x"}'])
def test_malformed_2xx_bodies_are_validation_errors(raw: bytes) -> None:
    with pytest.raises(APIResponseValidationError, match="unreadable Bedrock response"):
        adapter().parse_response(endpoint(), HttpResponse(200, {}, raw))


# fixture → class, "retry" / "fatal" / "" (neither), exception name
ERRORS: list[tuple[str, type[APIStatusError], str, str]] = [
    ("error_400_validation", BadRequestError, "", "ValidationException"),
    # A 400 that Bedrock documents as "resubmit your request later".
    ("error_400_service_quota", RateLimitError, "retry", "ServiceQuotaExceededException"),
    ("error_403_access_denied", PermissionDeniedError, "fatal", "AccessDeniedException"),
    ("error_403_invalid_signature", PermissionDeniedError, "fatal", "InvalidSignatureException"),
    (
        "error_403_unrecognized_client",
        PermissionDeniedError,
        "fatal",
        "UnrecognizedClientException",
    ),
    ("error_404_resource_not_found", NotFoundError, "", "ResourceNotFoundException"),
    ("error_408_model_timeout", RequestTimeoutError, "retry", "ModelTimeoutException"),
    ("error_424_model_error", APIStatusError, "", "ModelErrorException"),
    ("error_429_throttling", RateLimitError, "retry", "ThrottlingException"),
    ("error_429_model_not_ready", RateLimitError, "retry", "ModelNotReadyException"),
    ("error_500_internal_server", InternalServerError, "retry", "InternalServerException"),
    ("error_503_service_unavailable", InternalServerError, "retry", "ServiceUnavailableException"),
]


def error_response(name: str, **headers: str) -> HttpResponse:
    spec = fixture(name)
    return HttpResponse(spec["status"], {**spec["headers"], **headers}, orjson.dumps(spec["body"]))


@pytest.mark.parametrize(("name", "cls", "kind", "error_type"), ERRORS)
def test_error_classification(
    name: str, cls: type[APIStatusError], kind: str, error_type: str
) -> None:
    spec = fixture(name)
    with pytest.raises(APIStatusError) as info:
        adapter().parse_response(endpoint(), error_response(name))
    error = info.value
    assert type(error) is cls
    assert error.retryable is (kind == "retry")
    assert error.fatal is (kind == "fatal")
    assert error.code == error_type
    assert error.status_code == spec["status"]
    assert str(error) == f"{spec['status']}: {error_type}: {spec['body']['message']}"


@pytest.mark.parametrize(
    ("status", "headers", "raw", "code", "says"),
    [
        # Without the header, the body's __type names the exception.
        (
            403,
            {},
            b'{"__type": "com.amazon.coral.service#ExpiredTokenException", '
            b'"message": "The security token included in the request is expired"}',
            "ExpiredTokenException",
            "403: ExpiredTokenException: The security token",
        ),
        (429, {"x-amzn-errortype": "ThrottlingException"}, b"", "ThrottlingException", "empty"),
        (502, {}, b"<html>Bad Gateway</html>", None, "502: HTML page: Bad Gateway"),
    ],
)
def test_errors_without_the_usual_parts(
    status: int, headers: dict[str, str], raw: bytes, code: str | None, says: str
) -> None:
    with pytest.raises(APIStatusError) as info:
        adapter().parse_response(endpoint(), HttpResponse(status, headers, raw))
    assert info.value.code == code
    assert says in str(info.value)


def test_throttling_obeys_retry_after() -> None:
    with pytest.raises(RateLimitError) as info:
        adapter().parse_response(
            endpoint(), error_response("error_429_throttling", **{"retry-after": "2"})
        )
    assert info.value.retry_after == 2.0


# --- Secrets never reach a message -----------------------------------------------------


ECHOES = [
    orjson.dumps({"message": f"secret {SECRET} token {TOKEN}"}),
    # JSON may escape the "/" of a secret.
    b'{"message": "secret ' + SECRET.replace("/", "\\/").encode() + b'"}',
    # A body that is not JSON is quoted cut short: no prefix of the token may show.
    b"<html>" + b"x" * 150 + b" " + TOKEN.encode() + b"</html>",
]


@pytest.mark.parametrize("raw", ECHOES, ids=["json", "escaped", "html"])
@pytest.mark.parametrize("credentials", [TEMPORARY, None], ids=["given", "from-env"])
@pytest.mark.parametrize("status", [200, 403])
def test_secrets_echoed_in_a_body_are_redacted(
    raw: bytes, credentials: AwsCredentials | None, status: int
) -> None:
    env = {"AWS_ACCESS_KEY_ID": "ASIA", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN}
    built = BedrockAnthropicAdapter(credentials, env=env, clock=lambda: NOW)
    with pytest.raises(APIError) as info:
        built.parse_response(endpoint(), HttpResponse(status, {}, raw))
    error = info.value
    for text in (str(error), error.message, repr(error), repr(error.args)):
        for secret in (SECRET, TOKEN):
            assert secret[:12] not in text
            assert secret[:12].replace("/", "\\/") not in text


def test_stop_and_json_schema_reach_the_invoke_body() -> None:
    schema = {"type": "object"}
    sampling = SamplingParams(stop=("END",), json_schema=schema)
    request = adapter().build_request(endpoint(), prompt(HELLO), sampling, 5.0)
    body = orjson.loads(request.body)
    assert body["stop_sequences"] == ["END"]
    assert body["tool_choice"] == {"type": "tool", "name": "respond"}
    assert body["tools"][0]["input_schema"] == schema
