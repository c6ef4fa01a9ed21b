"""Google AI Studio Gemini (`POST {base_url}/v1beta/models/{model}:generateContent`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.engine.retry import parse_duration, parse_retry_after
from lm_deluge_cli.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    status_error_class,
)
from lm_deluge_cli.providers.base import Endpoint, error_text
from lm_deluge_cli.providers.parts import (
    PARSE_ERRORS,
    count,
    function_tools,
    image_url,
    media_type_of_url,
    parse_arguments,
    parse_data_url,
    text_of,
    unreadable,
    unsupported,
)
from lm_deluge_cli.types import (
    Completion,
    HttpRequest,
    HttpResponse,
    Message,
    Prompt,
    RateLimitInfo,
    SamplingParams,
    Usage,
)

__all__ = ["THINKING_BUDGETS", "GeminiAdapter", "max_output_tokens", "status_error"]

# reasoning_effort → thinkingBudget, as Google's OpenAI-compatibility guide maps it for the
# 2.5 models ("low", "medium", "high" → 1K, 8K, 24K tokens; "minimal" → the low budget).
THINKING_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}

# Every way a candidate can be stopped by a content check reads as OpenAI's content_filter.
_FILTERED = ("SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII")
_FILTERED_IMAGE = ("IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION")
_FINISH_REASONS: Mapping[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(_FILTERED + _FILTERED_IMAGE, "content_filter"),
}
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
        headers = {"content-type": "application/json"}
        if endpoint.api_key:
            headers["x-goog-api-key"] = endpoint.api_key
        return HttpRequest(
            method="POST",
            url=f"{endpoint.base_url}/v1beta/{_model_path(endpoint.model.wire_id)}:generateContent",
            headers=headers,
            body=orjson.dumps(body),
            timeout=timeout,
        )

    def parse_response(self, endpoint: Endpoint, response: HttpResponse) -> Completion:
        """The completion in a 2xx response; raises an `APIError` for anything else."""
        if response.status >= 300:
            raise status_error(endpoint, response)
        try:
            data = orjson.loads(response.body)
            feedback = data.get("promptFeedback") or {}
            if feedback.get("blockReason"):
                raise _blocked(feedback, response.status)
            candidate = data["candidates"][0]
            content = candidate.get("content") or {}
            parts = content.get("parts") or []
            texts = [_text(part) for part in parts]
            has_call = any("functionCall" in part for part in parts)
            usage = _usage(data.get("usageMetadata"))
            logprobs = _logprobs(candidate.get("logprobsResult"))
        except PARSE_ERRORS as exc:
            raise unreadable(endpoint, response, "Gemini response", exc) from exc
        kept = [t for t in texts if t is not None]
        return Completion.of(
            text="".join(kept) if kept else None,
            finish_reason=_finish_reason(candidate.get("finishReason"), has_call),
            usage=usage,
            logprobs=logprobs,
        )

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """Gemini sends no rate-limit headers: its limits live in AI Studio, not on responses."""
        return RateLimitInfo()


def _model_path(wire_id: str) -> str:
    # The path takes "models/{id}" (or a tuned model's own resource name).
    return wire_id if wire_id.startswith(("models/", "tunedModels/")) else f"models/{wire_id}"


def gemini_contents(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents) for OpenAI chat messages."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call_id → function name, for functionResponse
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append({"text": text_of(message.get("content"), str(role))})
            continue
        if role == "user":
            wire_role, parts = "user", _user_parts(message.get("content"))
        elif role == "assistant":
            wire_role, parts = "model", _model_parts(message, call_names)
        elif role == "tool":
            # Function results go back in a user turn, matched to the call by name.
            wire_role, parts = "user", [_function_response(message, call_names)]
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


def _model_parts(message: Message, call_names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if content:
        parts.append({"text": text_of(content, "assistant")})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise unsupported("an assistant tool call needs function.name")
        name = function["name"]
        if isinstance(call.get("id"), str):
            call_names[call["id"]] = name
        args = parse_arguments(function.get("arguments"), name)
        parts.append({"functionCall": {"name": name, "args": args}})
    return parts or [{"text": ""}]


def _function_response(message: Message, call_names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = call_names.get(call_id) if isinstance(call_id, str) else None
    name = name or message.get("name")
    if not isinstance(name, str) or not name:
        raise unsupported(f"tool result {call_id!r} answers no earlier assistant tool call")
    text = text_of(message.get("content"), "tool")
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    # `response` must be a JSON object; anything else is wrapped, as Google's SDKs do.
    response = value if isinstance(value, dict) else {"result": value}
    return {"functionResponse": {"name": name, "response": response}}


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
        config["thinkingConfig"] = {"thinkingBudget": budget}
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
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if isinstance(name, str):
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise unsupported(f"Gemini cannot express tool_choice {choice!r}")


def _text(part: Any) -> str | None:
    if not isinstance(part, dict):
        raise TypeError("a content part is not an object")
    text = part.get("text")
    if text is not None and not isinstance(text, str):
        raise TypeError("part.text is not a string")
    # Thought summaries (thought: true) are not the answer.
    return None if part.get("thought") else text


def _finish_reason(reason: Any, has_call: bool) -> str | None:
    if not isinstance(reason, str):
        return None
    if reason == "STOP" and has_call:
        return "tool_calls"
    return _FINISH_REASONS.get(reason, reason.lower())


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    thoughts = count(raw.get("thoughtsTokenCount"))
    # Thinking is billed as output; OpenAI's completion_tokens counts it the same way.
    return Usage(
        input_tokens=count(raw.get("promptTokenCount")),
        output_tokens=count(raw.get("candidatesTokenCount")) + thoughts,
        cached_input_tokens=count(raw.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _logprobs(raw: Any) -> list[dict[str, Any]] | None:
    """LogprobsResult in the shape OpenAI's logprobs.content uses, so records look alike."""
    if raw is None:
        return None
    top = raw.get("topCandidates") or []
    tokens: list[dict[str, Any]] = []
    for i, chosen in enumerate(raw.get("chosenCandidates") or []):
        alternatives = (top[i].get("candidates") or []) if i < len(top) else []
        tokens.append({**_token(chosen), "top_logprobs": [_token(a) for a in alternatives]})
    return tokens


def _token(candidate: Any) -> dict[str, Any]:
    # proto3 JSON leaves out zero values: a missing logProbability is a certain token.
    return {"token": candidate.get("token"), "logprob": candidate.get("logProbability", 0.0)}


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
    if reasons & _BAD_KEY_REASONS:
        cls = AuthenticationError  # Gemini answers a bad key with 400, not 401
    code = next((r for r in reasons if isinstance(r, str)), None) or status
    error = cls(
        f"{response.status}: {message}",
        status_code=response.status,
        retry_after=retry_after,
        code=code,
    )
    if status == "CANCELLED":  # 499: the connection closed early; the request may succeed
        error.retryable = True
    no_quota = response.status == 429 and _quota_exhausted(details)
    # 402: prepaid credits are used up; FAILED_PRECONDITION: no free tier in this region.
    if no_quota or response.status == 402 or status == "FAILED_PRECONDITION":
        error.fatal = True
        error.retryable = False
    return error


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
