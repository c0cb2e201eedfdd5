import httpx
import pytest

import errdiscount_sdk as ed
from errdiscount_sdk import ApiError, Classification, ErrorCategory, Severity, build_error
from errdiscount_sdk._model.errors import error_class_for


def _classification(**overrides: object) -> Classification:
    values: dict[str, object] = {
        "category": ErrorCategory.PROTOCOL,
        "severity": Severity.MODERATE,
        "transient": False,
        "retryable": False,
        "error_type": "418",
        "description": "d",
        "status_code": 418,
    }
    values.update(overrides)
    return Classification(**values)  # type: ignore[arg-type]


def test_every_public_exception_derives_from_the_root() -> None:
    for name in ed.__all__:
        member = getattr(ed, name)
        if isinstance(member, type) and issubclass(member, BaseException):
            assert issubclass(member, ed.ErrDiscountError), name


def test_the_docstring_draws_every_exception() -> None:
    import errdiscount_sdk._model.errors as module

    for name in ed.__all__:
        member = getattr(ed, name)
        if isinstance(member, type) and issubclass(member, BaseException):
            assert name in (module.__doc__ or ""), name


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"error_type": "read_timeout", "status_code": None}, ed.ReadTimeout),
        ({"error_type": "connection_refused", "status_code": None}, ed.ConnectionRefused),
        ({"error_type": "dns_failure", "status_code": None}, ed.DnsFailure),
        ({"error_type": "403", "status_code": 403}, ed.PermissionDenied),
        ({"error_type": "401", "status_code": 401}, ed.AuthenticationRequired),
        ({"error_type": "404", "status_code": 404}, ed.NotFound),
        ({"error_type": "429", "status_code": 429}, ed.RateLimited),
        ({"error_type": "503", "status_code": 503}, ed.ServiceUnavailable),
        ({"error_type": "500", "status_code": 500}, ed.ServerError),
        ({"error_type": "418", "status_code": 418}, ed.UnexpectedStatus),
        ({"error_type": "business_error", "category": ErrorCategory.BUSINESS}, ed.BusinessError),
        (
            {"error_type": "malformed_request", "category": ErrorCategory.DATA_FORMAT},
            ed.MalformedRequest,
        ),
        ({"error_type": "invalid_response_body"}, ed.InvalidResponseBody),
    ],
)
def test_error_class_for(overrides: dict[str, object], expected: type[ApiError]) -> None:
    assert error_class_for(_classification(**overrides)) is expected


def test_api_error_exposes_its_classification() -> None:
    request = httpx.Request("GET", "https://api.example.com/x")
    response = httpx.Response(503, request=request, headers={"Retry-After": "4"})
    error = build_error(response, attempts=3)
    assert isinstance(error, ed.ServiceUnavailable)
    assert error.category is ErrorCategory.PROTOCOL
    assert error.severity is Severity.SEVERE
    assert error.transient and error.retryable
    assert error.retry_after == 4.0
    assert error.status_code == 503
    assert error.request is request and error.response is response
    assert error.attempts == 3
    assert "after 3 attempts" in str(error)
    assert "ServiceUnavailable" in repr(error)
    assert error.discount is None and error.alert_url is None


def test_retry_after_too_long_keeps_the_last_error() -> None:
    request = httpx.Request("GET", "https://api.example.com/x")
    last = build_error(httpx.Response(429, request=request, headers={"Retry-After": "3600"}))
    error = ed.RetryAfterTooLong(last, 3600.0, 30.0)
    assert isinstance(error, ApiError)
    assert error.requested_wait == 3600.0 and error.limit == 30.0
    assert error.last_error is last
    assert error.status_code == 429
    assert "3600" in str(error)


def test_token_errors_have_stable_reasons() -> None:
    reasons = {
        cls.reason
        for cls in vars(ed).values()
        if isinstance(cls, type) and issubclass(cls, ed.TokenError)
    }
    assert {"expired", "bad_signature", "unknown_key", "malformed"} <= reasons


def test_enums_are_strings() -> None:
    assert ErrorCategory.DATA_FORMAT == "data_format"
    assert str(Severity.SEVERE) == "severe"
    assert [c.value for c in ErrorCategory] == ["network", "protocol", "business", "data_format"]


def test_evolve_copies_the_class_the_cause_and_every_field() -> None:
    request = httpx.Request("POST", "https://api.example.com/pay")
    error = build_error(httpx.Response(503, request=request))
    error.__cause__ = OSError("reset")
    copy = error.evolve(attempts=2, retry_stopped_by=ed.RetryStop.BUDGET)
    assert type(copy) is type(error) and copy is not error
    assert copy.__cause__ is error.__cause__
    assert copy.classification is error.classification and copy.request is request
    assert (copy.attempts, copy.retry_stopped_by) == (2, ed.RetryStop.BUDGET)
    assert "retry budget is exhausted" in str(copy)
    assert (error.attempts, error.retry_stopped_by) == (1, None)


def test_retry_after_too_long_evolves_into_its_own_class() -> None:
    request = httpx.Request("GET", "https://api.example.com/x")
    last = build_error(httpx.Response(503, request=request, headers={"Retry-After": "600"}))
    error = ed.RetryAfterTooLong.for_error(last, 600.0, 30.0, attempts=1)
    copy = error.evolve(alert_url="https://status.example.com/1")
    assert type(copy) is type(error)
    assert isinstance(copy, ed.ServiceUnavailable) and isinstance(copy, ed.RetryAfterTooLong)
    assert (copy.requested_wait, copy.limit, copy.last_error) == (600.0, 30.0, last)
    assert copy.alert_url == "https://status.example.com/1"
