"""Google AI Studio's Gemini API (`POST /v1beta/models/{model}:generateContent`) as the mock
speaks it: no rate-limit headers, `google.rpc.Status` error bodies.

Tools are ``functionDeclarations`` (``parameters`` or ``parametersJsonSchema``) and
``toolConfig.functionCallingConfig`` (``mode`` AUTO, ANY, NONE or VALIDATED, with
``allowedFunctionNames``); calls are ``functionCall`` parts (``args`` an object, no id).
``generationConfig.thinkingConfig`` asks the model to think (unless its ``thinkingBudget``
is 0): the thoughts are counted in ``thoughtsTokenCount`` and, with ``includeThoughts``,
sent as a ``thought: true`` part; a ``thoughtSignature`` rides on the first functionCall
part (else on the last part), as Gemini 2.5 and 3 send it. ``candidateCount`` asks for
several candidates (1 to 8).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.mock.formats.base import (
    Answer,
    Call,
    ChatRequest,
    Choice,
    FailureKind,
    Refusal,
    Reply,
    ToolChoice,
    ToolSpec,
    WireFormat,
    html_page,
    json_answer,
    keys_match,
    load_json_object,
    number_text,
    opaque_signature,
    reason_phrase,
    whole_seconds,
)
from lm_deluge_cli.mock.formats.chat import neutral_request, tool_spec
from lm_deluge_cli.mock.wire import token_logprobs

__all__ = ["GeminiFormat"]

_TYPE = "type.googleapis.com/google.rpc."
_RATE_LIMITS_DOC = "https://ai.google.dev/gemini-api/docs/rate-limits"
_QUOTA_EXCEEDED = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    f"information on this error, head to: {_RATE_LIMITS_DOC}."
)
_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_BAD_KEY = "API key not valid. Please pass a valid API key."
# The most candidates one request may ask for.
MAX_CANDIDATES = 8
# limit kind → (quotaMetric, quotaId) of the per-minute quota a refusal names.
_QUOTAS: Mapping[str, tuple[str, str]] = {
    "requests": (
        "generativelanguage.googleapis.com/generate_content_requests",
        "GenerateRequestsPerMinutePerProjectPerModel",
    ),
    "tokens": (
        "generativelanguage.googleapis.com/generate_content_input_token_count",
        "GenerateContentInputTokensPerModelPerMinute",
    ),
}
# google.rpc.Code names by HTTP status (AIP-193); a status with none is INTERNAL.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _status(code: int, message: str, details: list[dict[str, Any]] | None = None) -> Answer:
    """A ``google.rpc.Status`` error body."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": _STATUS_NAMES.get(code, "INTERNAL"),
    }
    if details:
        error["details"] = details
    return json_answer(code, {"error": error})


def _field(body: Mapping[str, Any], camel: str, snake: str) -> Any:
    # Google's JSON parser takes both spellings of every field (the docs' REST examples
    # use snake_case, the SDKs camelCase).
    return body[camel] if camel in body else body.get(snake)


def _content(parts: list[Any]) -> Any:
    """A content's parts as OpenAI message content: one text part is a plain string, an
    image an image part, any other file an OpenAI file part (a data URL, when inline)."""
    if len(parts) == 1 and set(parts[0]) == {"text"} and isinstance(parts[0]["text"], str):
        return parts[0]["text"]
    content: list[dict[str, Any]] = []
    for part in parts:
        blob = _field(part, "inlineData", "inline_data") or _field(part, "fileData", "file_data")
        call = _field(part, "functionCall", "function_call")
        result = _field(part, "functionResponse", "function_response")
        if isinstance(part.get("text"), str):
            content.append({"type": "text", "text": part["text"]})
        elif isinstance(blob, dict):
            content.append(_media(blob))
        elif isinstance(call, dict):
            # Read as the tool_use blocks the token count and the tool rounds know.
            content.append(
                {"type": "tool_use", "name": call.get("name"), "input": call.get("args")}
            )
        elif isinstance(result, dict):
            response = orjson.dumps(result.get("response"), default=str).decode()
            content.append({"type": "tool_result", "content": response})
        else:
            content.append({"type": next(iter(part), "unknown")})
    return content


def _media(blob: Mapping[str, Any]) -> dict[str, Any]:
    """An inlineData or fileData blob as the OpenAI part the token count reads."""
    mime_type = _field(blob, "mimeType", "mime_type")
    if not isinstance(mime_type, str) or mime_type.startswith("image/"):
        return {"type": "image_url"}  # counted as an image, as OpenAI would
    data = blob.get("data")
    if isinstance(data, str):
        return {"type": "file", "file": {"file_data": f"data:{mime_type};base64,{data}"}}
    return {"type": "file", "file": {}}


def _blob_problem(part: Mapping[str, Any], where: str) -> str | None:
    """What is wrong with a part's inlineData, or None (also when it has none)."""
    blob = _field(part, "inlineData", "inline_data")
    if blob is None:
        return None
    mime_type = _field(blob, "mimeType", "mime_type") if isinstance(blob, dict) else None
    if not isinstance(mime_type, str) or "/" not in mime_type:
        return f"{where}.inline_data.mime_type: a MIME type is required"
    data = blob.get("data")
    if not isinstance(data, str) or not _is_base64(data):
        return f"{where}.inline_data.data: Base64 decoding failed"
    return None


def _is_base64(data: str) -> bool:
    """Whether `data` is base64 as proto3 JSON reads bytes: standard or URL-safe, padded or not."""
    standard = data.replace("-", "+").replace("_", "/")
    try:
        base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _read(request: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int | None] | str:
    """(OpenAI-shaped messages, maxOutputTokens) of a request body, or what is wrong with it."""
    contents = request.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    messages: list[dict[str, Any]] = []
    system = _field(request, "systemInstruction", "system_instruction")
    if system is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
            return "* GenerateContentRequest.system_instruction.parts: must be a list of parts"
        text = "\n".join(p["text"] for p in parts if isinstance(p.get("text"), str))
        if text:
            messages.append({"role": "system", "content": text})
    for i, content in enumerate(contents):
        where = f"* GenerateContentRequest.contents[{i}]"
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
            return f"{where}.parts: contents.parts must not be empty."
        for j, part in enumerate(parts):
            if (problem := _blob_problem(part, f"{where}.parts[{j}]")) is not None:
                return problem
        role = content.get("role") or "user"  # a lone turn may leave the role out
        if role not in ("user", "model"):
            return f"{where}.role: Please use a valid role: user, model."
        messages.append(
            {"role": "assistant" if role == "model" else "user", "content": _content(parts)}
        )
    config = _field(request, "generationConfig", "generation_config") or {}
    if not isinstance(config, dict):
        return "* GenerateContentRequest.generation_config: must be an object"
    max_tokens = _field(config, "maxOutputTokens", "max_output_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        return "* GenerateContentRequest.generation_config.max_output_tokens: must be positive"
    count = _field(config, "candidateCount", "candidate_count")
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CANDIDATES
    ):
        return (
            "* GenerateContentRequest.generation_config.candidate_count: must be between 1 "
            f"and {MAX_CANDIDATES}"
        )
    return messages, max_tokens


def _config(request: Mapping[str, Any]) -> Mapping[str, Any]:
    config = _field(request, "generationConfig", "generation_config")
    return config if isinstance(config, dict) else {}


def _response_schema(request: Mapping[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """(schema, JSON mode) of a generationConfig: with ``responseMimeType``
    ``application/json``, its ``responseJsonSchema`` (JSON Schema) or ``responseSchema``
    (Google's OpenAPI subset, upper-case types and all), or JSON mode when it has neither."""
    config = _config(request)
    if _field(config, "responseMimeType", "response_mime_type") != "application/json":
        return None, False
    for camel, snake in (
        ("responseJsonSchema", "response_json_schema"),
        ("responseSchema", "response_schema"),
    ):
        schema = _field(config, camel, snake)
        if isinstance(schema, dict):
            return schema, False
    return None, True


def _logprobs(request: ChatRequest, text: str, top: int) -> dict[str, Any]:
    """A candidate's ``logprobsResult`` (each step's chosen token and its `top` likeliest)
    and ``avgLogprobs``; token ids are made up from the token."""

    def candidate(token: str, logprob: float) -> dict[str, Any]:
        token_id = zlib.crc32(token.encode()) % 256_000
        return {"token": token, "tokenId": token_id, "logProbability": logprob}

    steps = token_logprobs(request.messages, text)
    total = sum(step.logprob for step in steps)
    result: dict[str, Any] = {
        "topCandidates": [
            {"candidates": [candidate(token, lp) for token, lp in step.top[:top]]} for step in steps
        ],
        "chosenCandidates": [candidate(step.token, step.logprob) for step in steps],
        "logProbabilitySum": total,
    }
    return {"logprobsResult": result, "avgLogprobs": total / len(steps) if steps else 0.0}


def _tools(tools: Any) -> tuple[ToolSpec, ...]:
    """The ``functionDeclarations`` of every tool (built-in tools such as googleSearch are
    left out); a declaration's schema is ``parametersJsonSchema`` or ``parameters``."""
    specs: list[ToolSpec] = []
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        declarations = _field(tool, "functionDeclarations", "function_declarations")
        for declaration in declarations if isinstance(declarations, list) else ():
            if not isinstance(declaration, dict):
                continue
            schema = _field(declaration, "parametersJsonSchema", "parameters_json_schema")
            if not isinstance(schema, dict):
                schema = declaration.get("parameters")
            spec = tool_spec(declaration.get("name"), schema, declaration.get("description"))
            if spec is not None:
                specs.append(spec)
    return tuple(specs)


def _tool_choice(config: Any) -> ToolChoice:
    """``functionCallingConfig``: ANY always calls (one of ``allowedFunctionNames``, if
    given), NONE never, AUTO and VALIDATED as the model sees fit."""
    if not isinstance(config, dict):
        return ToolChoice()
    calling = _field(config, "functionCallingConfig", "function_calling_config")
    if not isinstance(calling, dict):
        return ToolChoice()
    names = _field(calling, "allowedFunctionNames", "allowed_function_names")
    allowed = tuple(n for n in names if isinstance(n, str)) if isinstance(names, list) else ()
    mode = str(calling.get("mode") or "AUTO").upper()
    if mode == "ANY":
        return ToolChoice("required", allowed)
    if mode == "NONE":
        return ToolChoice("none")
    return ToolChoice("auto", allowed)


def _thinks(config: Mapping[str, Any]) -> bool:
    """Whether a ``thinkingConfig`` asks to think: any but a ``thinkingBudget`` of 0."""
    thinking = _field(config, "thinkingConfig", "thinking_config")
    if not isinstance(thinking, dict) or not thinking:
        return False
    return bool(_field(thinking, "thinkingBudget", "thinking_budget") != 0)


def _candidate(choice: Choice, index: int, shown: bool) -> dict[str, Any]:
    """One candidate: the thought part (when `shown`), the text, the functionCall parts; a
    candidate with no parts at all (an empty answer) has a content without ``parts``."""
    parts: list[dict[str, Any]] = []
    if choice.reasoning is not None and shown:
        parts.append({"text": choice.reasoning, "thought": True})
    if choice.text:
        parts.append({"text": choice.text})
    calls: list[dict[str, Any]] = [
        {"functionCall": {"name": c.name, "args": c.parsed()}} for c in choice.tool_calls
    ]
    parts += calls
    if choice.reasoning is not None and parts:
        signed = calls[0] if calls else parts[-1]
        signed["thoughtSignature"] = opaque_signature(choice.reasoning, 120)
    content: dict[str, Any] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
    return {
        "content": content,
        "finishReason": "MAX_TOKENS" if choice.truncated else "STOP",
        "index": index,
    }


class GeminiFormat(WireFormat):
    """``x-goog-api-key`` (or ``?key=``) auth; 429 ``RESOURCE_EXHAUSTED`` with a
    ``RetryInfo.retryDelay``, 503 ``UNAVAILABLE`` for overload, no rate-limit headers."""

    name = "gemini"
    answer_fields = ("candidates",)

    def authenticate(self, call: Call, api_key: str | None) -> Answer | None:
        if api_key is None:
            return None
        presented = call.headers.get("x-goog-api-key") or call.query.get("key")
        if not presented:
            return _status(403, _UNREGISTERED)
        if keys_match(presented, api_key):
            return None
        # Google answers a wrong key with 400, naming the reason in an ErrorInfo detail.
        info = {
            "@type": _TYPE + "ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
        return _status(400, _BAD_KEY, [info])

    def parse(self, call: Call) -> ChatRequest | Answer:
        request = load_json_object(call.body)
        if request is None:
            return _status(400, "Invalid JSON payload received. Expected an object.")
        read = _read(request)
        if isinstance(read, str):
            violation = {"field": read.split(":", 1)[0].lstrip("* "), "description": read}
            return _status(
                400, read, [{"@type": _TYPE + "BadRequest", "fieldViolations": [violation]}]
            )
        messages, max_tokens = read
        output = _response_schema(request)
        config = _config(request)
        count = _field(config, "candidateCount", "candidate_count")
        return neutral_request(
            call.path_model or "",
            messages,
            max_tokens,
            request,
            output,
            _tools(request.get("tools")),
            _tool_choice(_field(request, "toolConfig", "tool_config")),
            reasoning=_thinks(config),
            choices=count if isinstance(count, int) else 1,
        )

    def completion(self, request: ChatRequest, reply: Reply) -> Answer:
        prompt = reply.prompt_tokens
        thoughts = reply.reasoning_tokens
        output = reply.completion_tokens - thoughts
        config = _config(request.raw)
        thinking = _field(config, "thinkingConfig", "thinking_config")
        shown = isinstance(thinking, dict) and bool(
            _field(thinking, "includeThoughts", "include_thoughts")
        )
        candidates = []
        for index, choice in enumerate(reply.choices):
            candidate = _candidate(choice, index, shown)
            if _field(config, "responseLogprobs", "response_logprobs"):
                top = _field(config, "logprobs", "logprobs")
                top = top if isinstance(top, int) else 0
                candidate.update(_logprobs(request, choice.text, top))
            candidates.append(candidate)
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        payload = {
            "candidates": candidates,
            "usageMetadata": usage,
            "modelVersion": request.model,
            "responseId": reply.response_id,
        }
        return json_answer(200, payload)

    def rate_limited(self, refusal: Refusal) -> Answer:
        metric, quota_id = _QUOTAS[refusal.kind]
        violation = {
            "quotaMetric": metric,
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": refusal.model},
            "quotaValue": number_text(refusal.limit),
        }
        details: list[dict[str, Any]] = [
            {"@type": _TYPE + "QuotaFailure", "violations": [violation]},
            {
                "@type": _TYPE + "Help",
                "links": [
                    {"description": "Learn more about Gemini API quotas", "url": _RATE_LIMITS_DOC}
                ],
            },
        ]
        # Whole seconds, as the API sends them; none when no wait would admit the request.
        if refusal.wait_s is not None and refusal.advertise:
            delay = f"{whole_seconds(refusal.wait_s)}s"
            details.append({"@type": _TYPE + "RetryInfo", "retryDelay": delay})
        return _status(429, _QUOTA_EXCEEDED, details)

    def failure(self, kind: FailureKind) -> Answer:
        if kind == "overloaded":
            body = {
                "code": 503,
                "message": "The model is overloaded. Please try again later.",
                "status": "UNAVAILABLE",
            }
            return json_answer(503, {"error": body})
        return _status(
            500,
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        )

    def status_error(self, status: int) -> Answer:
        if status == 502:
            # Google's front end answers a 502 with its own HTML page.
            return html_page(status, "Error 502 (Server Error)!!1", "Google")
        if status == 504:
            return _status(status, "Deadline expired before operation could complete.")
        return _status(status, f"{reason_phrase(status)}.")
