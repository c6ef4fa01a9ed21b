"""The one error tree, and the exit code each error maps to at the CLI edge.

    LMDelugeError
    ├── UsageError ······················ exit 2: bad flags, job file or input path
    │   ├── ConfigError                   a key or value in the job is wrong
    │   ├── MissingAPIKeyError            the key's environment variable is not set
    │   └── OutputLockedError             another run is writing the same output
    ├── OutputWriteError ················ exit 2: the output cannot be written (disk full, …)
    ├── FatalProviderError ·············· exit 3: a provider refuses every request (bad key, …)
    └── APIError ························ one request failed; becomes an error record
        ├── APIConnectionError            nothing usable came back
        │   └── APITimeoutError           …within request_timeout
        ├── APIResponseValidationError    a 2xx whose body we cannot read
        │   ├── SchemaValidationError     …or whose answer breaks the json_schema asked for
        │   └── EmptyAnswerError          …or whose answer says nothing (no text, tool call
        │                                 or refusal): retried, never cached
        └── APIStatusError                the provider answered with an error status
            ├── BadRequestError           400
            ├── AuthenticationError       401
            ├── PermissionDeniedError     403
            ├── NotFoundError             404
            ├── RequestTimeoutError       408
            ├── ConflictError             409
            ├── UnprocessableEntityError  422
            ├── RateLimitError            429
            ├── InternalServerError       5xx
            └── OverloadedError           529

Foreign exceptions (aiohttp, httpx, OSError) are translated once, in
`lm_deluge_cli.transport`, with ``raise ... from exc``.

A run that raises none of these exits with what its output holds: 0 when every line's
latest record is ok, 1 when any is an error (this run's or an earlier run's), 4 when it
stopped with lines left (the spending cap), 130 when interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EXIT_FATAL_PROVIDER",
    "EXIT_INTERRUPTED",
    "EXIT_LINES_LEFT",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "EXIT_USAGE",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "EmptyAnswerError",
    "FatalProviderError",
    "InternalServerError",
    "LMDelugeError",
    "MissingAPIKeyError",
    "NotFoundError",
    "OutputLockedError",
    "OutputWriteError",
    "OverloadedError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "SchemaValidationError",
    "UnprocessableEntityError",
    "UsageError",
    "status_error_class",
]

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_FATAL_PROVIDER = 3
# Stopped before every line had a record (the spending cap): the same command resumes.
EXIT_LINES_LEFT = 4
# Ctrl-C or SIGTERM: 128 + SIGINT, as shells report an interrupted command.
EXIT_INTERRUPTED = 130


class LMDelugeError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = EXIT_USAGE


class UsageError(LMDelugeError):
    """The command, job file or input cannot be used as given."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A key or value in the job (file or flags) is wrong; the message names it."""


class MissingAPIKeyError(UsageError):
    """A model needs an API key whose environment variable is not set."""

    def __init__(self, variable: str, model: str) -> None:
        self.variable = variable
        self.model = model
        super().__init__(
            f"{model} needs an API key: set {variable} in the environment or in .env "
            f"(or point the model at another variable with api_key_env)"
        )


class OutputLockedError(UsageError):
    """Another run holds the lock on the same output file."""


class OutputWriteError(LMDelugeError):
    """The output file cannot be written (disk full, read-only directory, …)."""

    exit_code = EXIT_USAGE


class FatalProviderError(LMDelugeError):
    """A provider refuses every request (bad key, no permission): stop, don't spend the input."""

    exit_code = EXIT_FATAL_PROVIDER


class APIError(LMDelugeError):
    """One request failed. `type` is the short name written into error records."""

    type = "api_error"
    retryable = False
    # Fatal: the model is unusable for the rest of the run (bad key, no permission, no quota).
    fatal = False

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body


class APIConnectionError(APIError):
    """The connection failed or dropped before a full response arrived."""

    type = "connection_error"
    retryable = True


class APITimeoutError(APIConnectionError):
    """No full response within request_timeout."""

    type = "timeout"


class APIResponseValidationError(APIError):
    """The provider answered 2xx but the body is not what its wire format promises."""

    type = "invalid_response"
    retryable = True


class SchemaValidationError(APIResponseValidationError):
    """The completion does not match the json_schema it was asked for; another try may."""

    type = "schema_mismatch"
    retryable = True


class EmptyAnswerError(APIResponseValidationError):
    """The answer holds no text, tool call or refusal: nothing a user could use."""

    type = "empty_answer"
    retryable = True


class APIStatusError(APIError):
    """The provider answered with an error status."""

    type = "status_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.retry_after = retry_after
        # The provider's own error code (e.g. OpenAI's "insufficient_quota").
        self.code = code


class BadRequestError(APIStatusError):
    type = "bad_request"


class AuthenticationError(APIStatusError):
    type = "authentication_error"
    fatal = True


class PermissionDeniedError(APIStatusError):
    type = "permission_denied"
    fatal = True


class NotFoundError(APIStatusError):
    type = "not_found"


class RequestTimeoutError(APIStatusError):
    type = "request_timeout"
    retryable = True


class ConflictError(APIStatusError):
    type = "conflict"
    retryable = True


class UnprocessableEntityError(APIStatusError):
    type = "unprocessable_entity"


class RateLimitError(APIStatusError):
    type = "rate_limit"
    retryable = True


class InternalServerError(APIStatusError):
    type = "server_error"
    retryable = True


class OverloadedError(APIStatusError):
    type = "overloaded"
    retryable = True


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    529: OverloadedError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The error class for an HTTP error status (5xx other than 529 → InternalServerError)."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIStatusError
