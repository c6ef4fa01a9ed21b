"""The one error tree, and the exit code each error maps to at the CLI edge.

    LMDelugeError
    ├── UsageError ······················ exit 2: bad flags, job file or input path
    │   ├── ConfigError                   a key or value in the job is wrong
    │   │   └── InvalidValueError         …refused by the value's own check (Limits, Job, …)
    │   ├── MissingAPIKeyError            the key's environment variable is not set
    │   └── OutputLockedError             another run is writing the same output
    ├── OutputWriteError ················ exit 2: the output cannot be written (disk full, …)
    ├── FatalProviderError ·············· exit 3: a provider refuses every request (bad key, …)
    │   └── AllModelsDeadError            …every model of the run refused its requests
    ├── NotRunError ····················· exit 4: the run stopped before sending this line
    │                                     (spending cap, interrupt); the same command resumes it
    └── APIError ························ one request failed; becomes an error record (exit 1)
        ├── MissingCredentialsError       a model's credentials are incomplete (fatal)
        ├── ModelUnavailableError         not sent: its model stopped taking requests earlier
        ├── APIConnectionError            nothing usable came back
        │   └── APITimeoutError           …within request_timeout
        ├── APIResponseValidationError    a 2xx whose body we cannot read
        │   ├── SchemaValidationError     …or whose answer breaks the json_schema asked for
        │   └── EmptyAnswerError          …or whose answer says nothing (no text, tool call
        │                                 or refusal): retried, never cached
        └── APIStatusError                the provider answered with an error status
            ├── BadRequestError           400
            ├── AuthenticationError       401, or a bad key whatever the status (fatal)
            ├── PermissionDeniedError     403, or an account the model is refused to (fatal)
            ├── QuotaExhaustedError       402, or a 429 whose quota or credit is used up
            │                             until someone pays or the period ends (fatal)
            ├── NotFoundError             404
            ├── RequestTimeoutError       408
            ├── ConflictError             409
            ├── UnprocessableEntityError  422
            ├── RateLimitError            429
            ├── RequestCancelledError     499: the connection closed early; may succeed again
            ├── InternalServerError       5xx
            │   └── NotImplementedByServerError  501: no retry will change it
            └── OverloadedError           529

A fatal error (`fatal`) makes its model unusable for the rest of the run; a retryable one
(`retryable`) is sent again, up to max_attempts. Both are properties of the class: an
adapter that reads more than the status (an error code, a quota's window) chooses the
class that says so, and never changes them on one error.

Foreign exceptions (aiohttp, httpx, OSError) are translated once, in
`lm_deluge_cli.transport`, with ``raise ... from exc``.

A run that raises none of these exits with what its output holds: 0 when every line's
latest record is ok, 1 when any is an error (this run's or an earlier run's), 4 when it
stopped with lines left (the spending cap), 130 when interrupted (Ctrl-C or SIGTERM).
`exit_code` on each class is that code.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
    "AllModelsDeadError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "EmptyAnswerError",
    "FatalProviderError",
    "InternalServerError",
    "InvalidValueError",
    "LMDelugeError",
    "MissingAPIKeyError",
    "MissingCredentialsError",
    "ModelUnavailableError",
    "NotFoundError",
    "NotImplementedByServerError",
    "NotRunError",
    "OutputLockedError",
    "OutputWriteError",
    "OverloadedError",
    "PermissionDeniedError",
    "QuotaExhaustedError",
    "RateLimitError",
    "RequestCancelledError",
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

    exit_code: ClassVar[int] = EXIT_USAGE


class UsageError(LMDelugeError):
    """The command, job file or input cannot be used as given."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A key or value in the job (file or flags) is wrong; the message names it."""


class InvalidValueError(ConfigError):
    """A config value (`Limits`, `Job`, …) refused one of its fields in its constructor.

    `field` is the field as the value names it (``max_attempts``, ``sampling.top_p``) and
    `problem` the rest of the message (``must be a positive integer, got 0``). Code that
    knows where the field came from names it so with `at`: a job file's key, a flag.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field} {problem}")

    def at(self, label: str) -> ConfigError:
        """The same error, naming the field as `label` (``job.toml: limits.max_attempts``)."""
        return ConfigError(f"{label} {self.problem}")


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


class AllModelsDeadError(FatalProviderError):
    """Every model of the run refused its requests; carries the last model's fatal error."""

    def __init__(self, error: APIError, model: str, key_variable: str) -> None:
        hint = f" (check {key_variable})" if key_variable else ""
        super().__init__(f"{model} refused the requests{hint}: {error.message}")
        self.error = error
        self.model = model


class NotRunError(LMDelugeError):
    """The run stopped (spending cap, interrupt) before sending this line: in the Python
    API's results where a record would be; the same command or call resumes it."""

    type: ClassVar[str] = "not_run"
    exit_code = EXIT_LINES_LEFT


class APIError(LMDelugeError):
    """One request failed. `type` is the short name written into error records.

    A subclass names its `type`, and where it differs from its parent whether it is
    `retryable` and `fatal`, in its class line: ``class X(APIError, type="x", fatal=True)``.
    """

    type: ClassVar[str] = "api_error"
    retryable: ClassVar[bool] = False
    # Fatal: the model is unusable for the rest of the run (bad key, no permission, no quota).
    fatal: ClassVar[bool] = False

    def __init_subclass__(
        cls,
        *,
        type: str | None = None,
        retryable: bool | None = None,
        fatal: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if type is not None:
            cls.type = type
        if retryable is not None:
            cls.retryable = retryable
        if fatal is not None:
            cls.fatal = fatal

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body


class MissingCredentialsError(APIError, type="authentication_error", fatal=True):
    """A model's credentials are missing or incomplete: every request would fail alike."""


class ModelUnavailableError(APIError, type="model_unavailable"):
    """Not sent: the model stopped taking requests earlier in the run (a fatal error)."""


class APIConnectionError(APIError, type="connection_error", retryable=True):
    """The connection failed or dropped before a full response arrived."""


class APITimeoutError(APIConnectionError, type="timeout"):
    """No full response within request_timeout."""


class APIResponseValidationError(APIError, type="invalid_response", retryable=True):
    """The provider answered 2xx but the body is not what its wire format promises."""


class SchemaValidationError(APIResponseValidationError, type="schema_mismatch"):
    """The completion does not match the json_schema it was asked for; another try may."""


class EmptyAnswerError(APIResponseValidationError, type="empty_answer"):
    """The answer holds no text, tool call or refusal: nothing a user could use."""


class APIStatusError(APIError, type="status_error"):
    """The provider answered with an error status."""

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


class BadRequestError(APIStatusError, type="bad_request"):
    """400: the provider refuses the request as it was sent."""


class AuthenticationError(APIStatusError, type="authentication_error", fatal=True):
    """401, or a key the provider refuses whatever the status."""


class PermissionDeniedError(APIStatusError, type="permission_denied", fatal=True):
    """403, or an account the model is refused to."""


class QuotaExhaustedError(APIStatusError, type="quota_exhausted", fatal=True):
    """The account's credit or quota is used up (402, OpenAI's insufficient_quota, a daily
    or monthly quota): every request fails until someone pays or the period ends."""


class NotFoundError(APIStatusError, type="not_found"):
    """404: the provider knows no such model or path."""


class RequestTimeoutError(APIStatusError, type="request_timeout", retryable=True):
    """408: the provider stopped waiting for the request; sending again may work."""


class ConflictError(APIStatusError, type="conflict", retryable=True):
    """409: the request clashed with another in progress; sending again may work."""


class UnprocessableEntityError(APIStatusError, type="unprocessable_entity"):
    """422: the request is well-formed but refused as it is."""


class RateLimitError(APIStatusError, type="rate_limit", retryable=True):
    """429: too many requests or tokens for now; the run pauses, then sends again."""


class RequestCancelledError(APIStatusError, type="cancelled", retryable=True):
    """499: the connection closed before the provider answered; sending again may work."""


class InternalServerError(APIStatusError, type="server_error", retryable=True):
    """5xx: the provider failed to answer; sending again may work."""


class NotImplementedByServerError(InternalServerError, type="not_implemented", retryable=False):
    """501: the server does not do what was asked, however often it is asked."""


class OverloadedError(APIStatusError, type="overloaded", retryable=True):
    """529: the provider is overloaded for now; sending again may work."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    499: RequestCancelledError,
    501: NotImplementedByServerError,
    529: OverloadedError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The error class for an HTTP error status (other 5xx → InternalServerError)."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIStatusError
