"""Amazon Bedrock's InvokeModel for Anthropic models (`POST /model/{modelId}/invoke`) as the
mock speaks it: the Messages body without `model`, and AWS's error headers.

The SigV4 signature is not checked, only that one is there: the mock holds no secret key.
Document blocks with url or file sources are refused: Bedrock takes neither. Prompt caching
is Anthropic's; a request with breakpoints also gets the ``x-amzn-bedrock-cache-read-`` and
``-cache-write-input-token-count`` headers, and ``x-amzn-bedrock-input-token-count`` counts
the prompt after the last breakpoint, as ``usage.input_tokens`` does.
"""

from __future__ import annotations

from typing import Any

from lm_deluge_cli.mock.formats.anthropic import (
    chat_messages,
    message_body,
    read_messages_body,
    structured_request,
    tool_plan_before_calls,
)
from lm_deluge_cli.mock.formats.anthropic_prompt import read_breakpoints
from lm_deluge_cli.mock.formats.base import (
    Answer,
    Call,
    ChatRequest,
    FailureKind,
    Refusal,
    Reply,
    WireFormat,
    as_uuid,
    json_answer,
    keys_match,
    load_json_object,
    reason_phrase,
)

__all__ = ["BedrockFormat"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_REFORMAT = ", please reformat your input and try again."


def _exception(status: int, name: str, message: str) -> Answer:
    """An AWS error: the exception's name in ``x-amzn-errortype``, the message in the body."""
    return json_answer(
        status, {"message": message}, {"x-amzn-errortype": name + _ERROR_TYPE_SUFFIX}
    )


def _malformed(problem: str) -> Answer:
    return _exception(400, "ValidationException", f"Malformed input request: {problem}{_REFORMAT}")


def _access_key_id(authorization: str) -> str | None:
    """The access key id of a SigV4 ``Authorization`` header, or None when it is not one."""
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != _ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        fields[name] = value
    if not (fields.get("Credential") and fields.get("SignedHeaders") and fields.get("Signature")):
        return None
    return fields["Credential"].split("/", 1)[0] or None


def _schema_problem(problem: str) -> str:
    # "max_tokens: Field required" as Bedrock's JSON Schema validator puts it.
    field, _, rest = problem.partition(": ")
    if rest == "Field required":
        return f"#: required key [{field}] not found"
    return f"#/{field}: {rest}"


class BedrockFormat(WireFormat):
    """A SigV4 ``Authorization`` header is required (its access key id is the key checked);
    errors name their exception in ``x-amzn-errortype``: 429 ``ThrottlingException``, 503
    ``ServiceUnavailableException`` for overload. No rate-limit headers."""

    name = "bedrock"
    answer_fields = ("content",)
    overload_status = 503

    def authenticate(self, call: Call, api_key: str | None) -> Answer | None:
        authorization = call.headers.get("authorization")
        if not authorization:
            return _exception(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        key_id = _access_key_id(authorization)
        if key_id is None:
            message = (
                "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                f"parameters of an {_ALGORITHM} signature."
            )
            return _exception(403, "IncompleteSignatureException", message)
        if api_key is not None and not keys_match(key_id, api_key):
            message = "The security token included in the request is invalid."
            return _exception(403, "UnrecognizedClientException", message)
        return None

    def parse(self, call: Call) -> ChatRequest | Answer:
        request = load_json_object(call.body)
        if request is None:
            return _malformed("#: expected type: JSONObject")
        if "model" in request:
            # The model is the URL's; Bedrock's schema refuses any key it does not know.
            return _malformed("#: extraneous key [model] is not permitted")
        if "anthropic_version" not in request:
            return _malformed("#: required key [anthropic_version] not found")
        read = read_messages_body(request, remote_sources=False)
        if isinstance(read, str):
            return _malformed(_schema_problem(read))
        system, max_tokens, messages = read
        model = call.path_model or ""
        breakpoints = read_breakpoints(request, self.name, model)
        if isinstance(breakpoints, str):
            # Checked by the model behind Bedrock, whose errors Bedrock passes on.
            message = f"The model returned the following errors: {breakpoints}"
            return _exception(400, "ValidationException", message)
        chat = chat_messages(system, messages)
        return structured_request(model, chat, max_tokens, request, breakpoints)

    def completion(self, request: ChatRequest, reply: Reply) -> Answer:
        payload: dict[str, Any] = message_body(request, reply, f"msg_bdrk_{reply.response_id}")
        usage = payload["usage"]
        headers = {
            "x-amzn-bedrock-input-token-count": str(usage["input_tokens"]),
            "x-amzn-bedrock-output-token-count": str(reply.completion_tokens),
        }
        if request.cache_breakpoints:
            read, written = reply.cache.read, reply.cache.written
            headers["x-amzn-bedrock-cache-read-input-token-count"] = str(read)
            headers["x-amzn-bedrock-cache-write-input-token-count"] = str(written)
        return json_answer(200, payload, headers)

    def states_tool_plan(self, request: ChatRequest) -> bool:
        return tool_plan_before_calls(request)

    def rate_limited(self, refusal: Refusal) -> Answer:
        # Bedrock sends no retry-after and no limit headers: the SDKs back off on their own.
        unit = "requests" if refusal.kind == "requests" else "tokens"
        return _exception(
            429, "ThrottlingException", f"Too many {unit}, please wait before trying again."
        )

    def failure(self, kind: FailureKind) -> Answer:
        if kind == "overloaded":
            message = "Bedrock is unable to process your request."
            return _exception(503, "ServiceUnavailableException", message)
        message = (
            "The system encountered an unexpected error during processing. Try your request again."
        )
        return _exception(500, "InternalServerException", message)

    def status_error(self, status: int) -> Answer:
        if status == 408:
            message = "Model has timed out in processing the request. Try your request again."
            return _exception(408, "ModelTimeoutException", message)
        name = "InternalServerException" if status >= 500 else "ValidationException"
        return _exception(status, name, f"{reason_phrase(status)}.")

    def request_headers(self, request_id: str) -> dict[str, str]:
        return {"x-amzn-requestid": as_uuid(request_id)}
