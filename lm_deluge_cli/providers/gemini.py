"""Google AI Studio Gemini (`POST {base_url}/v1beta/models/{model}:generateContent`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RequestCancelledError,
    status_error_class,
)
from lm_deluge_cli.headers import parse_duration, parse_retry_after
from lm_deluge_cli.providers.base import Endpoint, error_text
from lm_deluge_cli.providers.gemini_answer import WIRE_FORMAT, candidate_answers, usage
from lm_deluge_cli.providers.parts import (
    PARSE_ERRORS,
    function_tools,
    image_url,
    media_type_of_url,
    named_function,
    parse_arguments,
    parse_data_url,
    read_body,
    text_of,
    unsupported,
)
from lm_deluge_cli.results import Completion
from lm_deluge_cli.types import (
    HttpRequest,
    HttpResponse,
    Message,
    Prompt,
    RateLimitInfo,
    SamplingParams,
)

__all__ = [
    "THINKING_BUDGETS",
    "WIRE_FORMAT",
    "GeminiAdapter",
    "gemini_contents",
    "google_json_request",
    "max_output_tokens",
    "model_path",
    "status_error",
]

# reasoning_effort → thinkingBudget, as Google's OpenAI-compatibility guide maps it for the
# 2.5 models ("low", "medium", "high" → 1K, 8K, 24K tokens; "minimal" → the low budget).
THINKING_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}

_TOOL_CHOICE: Mapping[str, str] = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# The media types Gemini documents for a file's inlineData: PDFs (read with vision), the text
# types of the document guide, and images. Other text/* files are sent as text/plain: Gemini
# reads every document but a PDF as plain text anyway.
_DOCUMENT_TYPES = frozenset(
    {
        "application/pdf",
        "application/x-javascript",
        "text/javascript",
        "application/x-python",
        "text/x-python",
        "text/plain",
        "text/html",
        "text/css",
        "text/md",
        "text/csv",
        "text/xml",
        "text/rtf",
    }
)
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
_INLINE_TYPES = _DOCUMENT_TYPES | _IMAGE_TYPES
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
# ErrorInfo reasons that mean the key itself is refused (sent with 400 INVALID_ARGUMENT).
_BAD_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})
# A daily quota resets at midnight Pacific time: no retry within a run will succeed.
# Quota ids name their window, e.g. GenerateRequestsPerDayPerProjectPerModel-FreeTier.
_PER_DAY = "PerDay"


class GeminiAdapter:
    """Builds generateContent requests and reads their responses."""

    def build_request(
        self, endpoint: Endpoint, prompt: Prompt, sampling: SamplingParams, timeout: float
    ) -> HttpRequest:
        """The generateContent request for one prompt.

        Fields of an OpenAI Batch API line that Gemini has (tools, seed, …) are
        translated; OpenAI-only ones (user, store, logit_bias, …) are left out.
        """
        system, contents = gemini_contents(prompt.messages)
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": system}
        body["generationConfig"] = _generation_config(endpoint, sampling, prompt.extra_body)
        extra = prompt.extra_body
        if extra.get("tools"):
            body["tools"] = [{"functionDeclarations": _declarations(extra["tools"])}]
        if extra.get("tool_choice") is not None:
            body["toolConfig"] = {"functionCallingConfig": _calling_config(extra["tool_choice"])}
        path = f"/v1beta/{model_path(endpoint.model.wire_id)}:generateContent"
        return google_json_request(endpoint, path, body, timeout)

    def parse_response(self, endpoint: Endpoint, response: HttpResponse) -> Completion:
        """The completion in a 2xx response; raises an `APIError` for anything else."""
        return read_body(
            endpoint,
            response,
            "Gemini response",
            status_error,
            lambda data: _completion(data, response.status),
        )

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """Gemini sends no rate-limit headers: its limits live in AI Studio, not on responses."""
        return RateLimitInfo()

    def status_error(self, endpoint: Endpoint, response: HttpResponse) -> APIStatusError:
        return status_error(endpoint, response)


def _completion(data: Any, status: int) -> Completion:
    feedback = data.get("promptFeedback") or {}
    if feedback.get("blockReason"):
        raise _blocked(feedback, status)
    return Completion(candidate_answers(data), usage(data.get("usageMetadata")))


def google_json_request(
    endpoint: Endpoint, path: str, body: Mapping[str, Any], timeout: float
) -> HttpRequest:
    """A JSON POST to `base_url + path` with the key in Google's x-goog-api-key header."""
    headers = {"content-type": "application/json"}
    if endpoint.api_key:
        headers["x-goog-api-key"] = endpoint.api_key
    return HttpRequest("POST", f"{endpoint.base_url}{path}", headers, orjson.dumps(body), timeout)


def model_path(wire_id: str) -> str:
    """The model's resource name, as paths and requests name it: ``models/{id}`` (or a tuned
    model's own)."""
    return wire_id if wire_id.startswith(("models/", "tunedModels/")) else f"models/{wire_id}"


def gemini_contents(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents) for OpenAI chat messages.

    An assistant message whose ``reasoning`` (as a record holds it) has a ``gemini`` part is
    sent as the parts Gemini returned, thought signatures and all, rather than rebuilt from
    its text and tool calls; reasoning parts of other formats are dropped.
    """
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    # tool_call_id → the functionResponse fields naming the call it answers
    calls: dict[str, dict[str, str]] = {}
    for index, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append({"text": text_of(message.get("content"), str(role))})
            continue
        if role == "user":
            wire_role, parts = "user", _user_parts(message.get("content"))
        elif role == "assistant":
            wire_role, parts = "model", _model_parts(message, calls, f"messages[{index}]")
        elif role == "tool":
            # Function results go back in a user turn, matched to the call by name.
            wire_role, parts = "user", [_function_response(message, calls)]
        else:
            raise unsupported(f"Gemini has no equivalent of the {role!r} role")
        # Gemini wants turns to alternate; several tool results answer one model turn.
        if contents and contents[-1]["role"] == wire_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": wire_role, "parts": parts})
    return system, contents


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise unsupported("user message content must be a string or a list of parts")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_image_part(image_url(part)[0]))
        elif kind == "file":
            parts.append(_file_part(part.get("file")))
        else:
            raise unsupported(f"Gemini cannot take a {kind!r} content part")
    return parts


def _image_part(url: str) -> dict[str, Any]:
    data_url = parse_data_url(url)
    if data_url is not None:
        return {"inlineData": {"mimeType": data_url.media_type, "data": data_url.data}}
    if not url.startswith(("https://", "http://", "gs://")):
        raise unsupported("an image URL must be https, gs or a base64 data URL")
    file_data: dict[str, Any] = {"fileUri": url}
    # FileData's mimeType is optional: sent only when the URL's extension names one.
    if (media_type := media_type_of_url(url)) is not None:
        file_data["mimeType"] = media_type
    return {"fileData": file_data}


def _file_part(file: Any) -> dict[str, Any]:
    """An OpenAI file part's ``file`` as inlineData."""
    if not isinstance(file, dict):
        raise unsupported("a file part needs a 'file' object")
    if isinstance(file.get("file_id"), str):
        raise unsupported(
            f"file_id {file['file_id']!r} names an OpenAI upload, which Gemini cannot read; "
            "give the file itself (file_data, or a local path)"
        )
    raw = file.get("file_data")
    data_url = parse_data_url(raw) if isinstance(raw, str) else None
    if data_url is None:
        raise unsupported("a file part needs file.file_data as a base64 data: URL, or a file_id")
    media_type = data_url.media_type
    if media_type not in _INLINE_TYPES:
        if not media_type.startswith("text/"):
            raise unsupported(
                f"Gemini cannot read {media_type} files; it reads PDFs, text files and PNG, "
                "JPEG, WebP, HEIC or HEIF images"
            )
        media_type = "text/plain"
    return {"inlineData": {"mimeType": media_type, "data": data_url.data}}


def _model_parts(
    message: Message, calls: dict[str, dict[str, str]], where: str
) -> list[dict[str, Any]]:
    replayed = _replayed_parts(message.get("reasoning"), where)
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if content and replayed is None:
        parts.append({"text": text_of(content, "assistant")})
    for call in message.get("tool_calls") or []:
        function = named_function(call)
        if function is None:
            raise unsupported("an assistant tool call needs function.name")
        name = function["name"]
        if isinstance(call.get("id"), str):
            calls[call["id"]] = {"name": name}
        args = parse_arguments(function.get("arguments"), name)
        parts.append({"functionCall": {"name": name, "args": args}})
    if replayed is None:
        return parts or [{"text": ""}]
    # An id Gemini gave a call goes back in the functionResponse that answers it.
    for part in replayed:
        call = part.get("functionCall")
        if isinstance(call, dict) and isinstance(call.get("id"), str):
            calls[call["id"]] = {"id": call["id"], "name": str(call.get("name"))}
    return replayed


def _replayed_parts(reasoning: Any, where: str) -> list[dict[str, Any]] | None:
    """The parts of a ``gemini`` reasoning part (copied), or None when there is none."""
    if reasoning is None:
        return None
    entries = reasoning.get("parts") if isinstance(reasoning, dict) else None
    if not isinstance(entries, list):
        raise unsupported(f"{where}.reasoning must be an object with a list of 'parts'")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("format") == WIRE_FORMAT:
            parts = entry.get("parts")
            if not isinstance(parts, list) or not parts:
                raise unsupported(f"{where}.reasoning has a gemini part without its 'parts'")
            if not all(isinstance(part, dict) for part in parts):
                raise unsupported(f"{where}.reasoning has a gemini part that is not an object")
            return [dict(part) for part in parts]
    return None


def _function_response(message: Message, calls: dict[str, dict[str, str]]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    known = calls.get(call_id) if isinstance(call_id, str) else None
    name = known["name"] if known else message.get("name")
    if not isinstance(name, str) or not name:
        raise unsupported(f"tool result {call_id!r} answers no earlier assistant tool call")
    text = text_of(message.get("content"), "tool")
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    # `response` must be a JSON object; anything else is wrapped, as Google's SDKs do.
    response = value if isinstance(value, dict) else {"result": value}
    return {"functionResponse": {**(known or {"name": name}), "response": response}}


def _generation_config(
    endpoint: Endpoint, sampling: SamplingParams, extra: Mapping[str, Any]
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "temperature": sampling.temperature,
        "topP": sampling.top_p,
        "maxOutputTokens": sampling.max_new_tokens,
    }
    schema = sampling.json_schema
    if sampling.json_mode or schema is not None:
        config["responseMimeType"] = "application/json"
    if schema is not None:
        config["responseJsonSchema"] = schema
    if sampling.logprobs:
        config["responseLogprobs"] = True
        if sampling.top_logprobs is not None:
            config["logprobs"] = sampling.top_logprobs
    budget = _thinking_budget(endpoint, sampling)
    if budget is not None:
        # Thought summaries: without them a thinking model returns no reasoning to read.
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True}
    if sampling.samples > 1:
        config["candidateCount"] = sampling.samples
    if sampling.stop:
        config["stopSequences"] = list(sampling.stop)
    for openai_name, gemini_name in (
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if extra.get(openai_name) is not None:
            config[gemini_name] = extra[openai_name]
    return config


def max_output_tokens(endpoint: Endpoint, sampling: SamplingParams) -> int:
    """The most tokens a request may generate: max_new_tokens plus any thinking budget."""
    return sampling.max_new_tokens + (_thinking_budget(endpoint, sampling) or 0)


def _thinking_budget(endpoint: Endpoint, sampling: SamplingParams) -> int | None:
    # Only thinking models take a thinkingConfig; others reject it.
    effort = sampling.reasoning_effort
    if not endpoint.model.reasoning or effort is None:
        return None
    return THINKING_BUDGETS.get(effort)


def _declarations(tools: Any) -> list[dict[str, Any]]:
    declarations = function_tools(tools, "Gemini")
    for declaration in declarations:
        # parametersJsonSchema takes JSON Schema as OpenAI tools spell it; "parameters"
        # would take only Gemini's OpenAPI subset.
        if "parameters" in declaration:
            declaration["parametersJsonSchema"] = declaration.pop("parameters")
    return declarations


def _calling_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        return {"mode": _TOOL_CHOICE[choice]}
    function = named_function(choice)
    if function is not None and function["name"]:
        return {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
    raise unsupported(
        f'Gemini cannot express tool_choice {choice!r}; it takes "auto", "none", '
        '"required" or one function: {"type": "function", "function": {"name": …}}'
    )


def _blocked(feedback: dict[str, Any], status: int) -> BadRequestError:
    reason = str(feedback["blockReason"])
    return BadRequestError(
        f"{status}: Gemini blocked the prompt ({reason}); it will be blocked again as sent",
        status_code=status,
        code=reason,
    )


def status_error(endpoint: Endpoint, response: HttpResponse) -> APIStatusError:
    message, _ = error_text(response.body, endpoint.api_key)
    status, details = _error_fields(response.body)
    reasons = {d.get("reason") for d in details if d.get("@type") == _ERROR_INFO}
    retry_after = parse_retry_after(response.headers)
    if retry_after is None:
        retry_after = _retry_delay(details)
    cls = status_error_class(response.status)
    if status == "CANCELLED":  # 499: the connection closed early; the request may succeed
        cls = RequestCancelledError
    if reasons & _BAD_KEY_REASONS:
        cls = AuthenticationError  # Gemini answers a bad key with 400, not 401
    elif status == "FAILED_PRECONDITION":  # no free tier in this region: billing must be on
        cls = PermissionDeniedError
    # 402: prepaid credits are used up; a 429 of a daily quota lasts until midnight.
    elif response.status == 402 or (response.status == 429 and _quota_exhausted(details)):
        cls = QuotaExhaustedError
    code = next((r for r in reasons if isinstance(r, str)), None) or status
    return cls(
        f"{response.status}: {message}",
        status_code=response.status,
        retry_after=retry_after,
        code=code,
    )


def _error_fields(body: bytes) -> tuple[str | None, list[dict[str, Any]]]:
    """(status, details) of a google.rpc.Status error body; empty when it is not one."""
    try:
        error = orjson.loads(body).get("error")
        details = [d for d in error.get("details") or [] if isinstance(d, dict)]
        status = error.get("status")
    except PARSE_ERRORS:
        return None, []
    return (status if isinstance(status, str) else None), details


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """The wait a RetryInfo detail asks for ("13s", "0.5s"), if any."""
    for detail in details:
        delay = detail.get("retryDelay")
        if detail.get("@type") == _RETRY_INFO and isinstance(delay, str):
            return parse_duration(delay)
    return None


def _quota_exhausted(details: list[dict[str, Any]]) -> bool:
    """True when a violated quota will not refill within the run: per-day, or a limit of 0."""
    violations = [
        violation
        for detail in details
        if detail.get("@type") == _QUOTA_FAILURE
        for violation in detail.get("violations") or []
        if isinstance(violation, dict)
    ]
    return any(
        _PER_DAY in str(v.get("quotaId", "")) or str(v.get("quotaValue")) == "0" for v in violations
    )
