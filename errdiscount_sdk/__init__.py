"""errdiscount: typed API errors, safe retries and signed compensation vouchers.

Importing the package loads the HTTP clients and the error vocabulary only. The
token machinery (cryptography, asyncio), the redemption client and the
compensation policy (tomllib) load on first use of one of their names
(`_LAZY`): an app that only calls APIs does not pay for them at start-up
(benchmarks/import_time.py).
"""

import importlib as _importlib
import typing as _typing

from ._http.async_client import AsyncClient
from ._http.budget import RetryBudget
from ._http.client import Client
from ._http.retry import RetryDetails, RetryPolicy
from ._model.alert_url import AlertUrlPolicy
from ._model.classify import Classification, build_error, classify
from ._model.enums import ErrorCategory, RetryStop, Severity
from ._model.errors import (
    AlreadyRedeemed,
    ApiError,
    AuthenticationRequired,
    BadGateway,
    BudgetExhausted,
    BusinessError,
    ConfigurationError,
    Conflict,
    ConnectFailed,
    ConnectionLost,
    ConnectionRefused,
    ConnectTimeout,
    DataFormatError,
    DnsFailure,
    ErrDiscountError,
    GatewayTimeout,
    IdempotencyConflict,
    InvalidClaims,
    InvalidEvent,
    InvalidResponseBody,
    InvalidSignature,
    KeyLoadError,
    KeySetUnavailable,
    MalformedRequest,
    MalformedResponse,
    MalformedToken,
    NetworkError,
    NotFound,
    PermissionDenied,
    PolicyError,
    PoolTimeout,
    ProtocolError,
    RateLimited,
    ReadTimeout,
    RedemptionError,
    RequestTimeout,
    RetryAfterTooLong,
    ServerError,
    ServiceUnavailable,
    TokenError,
    TokenExpired,
    TokenNotYetValid,
    TokenRejected,
    TokenTooLarge,
    TooManyRedirects,
    UnexpectedStatus,
    UnknownKey,
    UnsafeAlertUrl,
    UnsupportedAlgorithm,
    UnsupportedCriticalHeader,
    UserCapReached,
    WriteTimeout,
    WrongAudience,
    WrongIssuer,
    WrongSubject,
    WrongTokenType,
)
from ._model.parse import parse_error_payload
from ._model.payload import ErrorPayload
from ._model.retry_after import cap_retry_after, parse_retry_after
from ._report.event import CallEvent, OutcomeEvent, parse_event
from ._report.redaction import Redactor
from ._report.reporter import ErrorReporter
from ._version import __version__

if _typing.TYPE_CHECKING:
    from ._provider.backtest import BacktestResult, run_backtest
    from ._provider.detection import Detector, counts_as_failure
    from ._provider.detection_config import DetectionSettings
    from ._provider.detection_types import Observation
    from ._provider.errors import ProviderError
    from ._provider.policy import CompensationDecision, CompensationPolicy
    from ._redeem.client import AsyncRedemptionClient, RedemptionClient
    from ._redeem.models import PendingCompensation, Redemption, RedemptionGrant, UserCompensations
    from ._tokens.issuer import TokenIssuer
    from ._tokens.jwks_cache import AsyncRemoteKeySet, RemoteKeySet
    from ._tokens.keys import (
        KeyRing,
        KeySet,
        SigningKey,
        VerificationKey,
        generate_signing_key,
        jwk_thumbprint,
        load_signing_key_pem,
        save_signing_key_pem,
    )
    from ._tokens.spec import Compensation, DiscountToken, TokenErrorInfo
    from ._tokens.verifier import AsyncTokenVerifier, TokenVerifier

# Public name -> the private module that defines it, imported on first access.
_LAZY = {
    "BacktestResult": "._provider.backtest",
    "DetectionSettings": "._provider.detection_config",
    "Detector": "._provider.detection",
    "Observation": "._provider.detection_types",
    "ProviderError": "._provider.errors",
    "counts_as_failure": "._provider.detection",
    "run_backtest": "._provider.backtest",
    "AsyncRedemptionClient": "._redeem.client",
    "AsyncRemoteKeySet": "._tokens.jwks_cache",
    "AsyncTokenVerifier": "._tokens.verifier",
    "Compensation": "._tokens.spec",
    "CompensationDecision": "._provider.policy",
    "CompensationPolicy": "._provider.policy",
    "DiscountToken": "._tokens.spec",
    "KeyRing": "._tokens.keys",
    "KeySet": "._tokens.keys",
    "PendingCompensation": "._redeem.models",
    "Redemption": "._redeem.models",
    "RedemptionClient": "._redeem.client",
    "RedemptionGrant": "._redeem.models",
    "RemoteKeySet": "._tokens.jwks_cache",
    "SigningKey": "._tokens.keys",
    "TokenErrorInfo": "._tokens.spec",
    "TokenIssuer": "._tokens.issuer",
    "TokenVerifier": "._tokens.verifier",
    "UserCompensations": "._redeem.models",
    "VerificationKey": "._tokens.keys",
    "generate_signing_key": "._tokens.keys",
    "jwk_thumbprint": "._tokens.keys",
    "load_signing_key_pem": "._tokens.keys",
    "save_signing_key_pem": "._tokens.keys",
}

__all__ = [
    "AlertUrlPolicy",
    "AlreadyRedeemed",
    "ApiError",
    "AsyncClient",
    "AsyncRedemptionClient",
    "AsyncRemoteKeySet",
    "AsyncTokenVerifier",
    "AuthenticationRequired",
    "BacktestResult",
    "BadGateway",
    "BudgetExhausted",
    "BusinessError",
    "CallEvent",
    "Classification",
    "Client",
    "Compensation",
    "CompensationDecision",
    "CompensationPolicy",
    "ConfigurationError",
    "Conflict",
    "ConnectFailed",
    "ConnectTimeout",
    "ConnectionLost",
    "ConnectionRefused",
    "DataFormatError",
    "DetectionSettings",
    "Detector",
    "DiscountToken",
    "DnsFailure",
    "ErrDiscountError",
    "ErrorCategory",
    "ErrorPayload",
    "ErrorReporter",
    "GatewayTimeout",
    "IdempotencyConflict",
    "InvalidClaims",
    "InvalidEvent",
    "InvalidResponseBody",
    "InvalidSignature",
    "KeyLoadError",
    "KeyRing",
    "KeySet",
    "KeySetUnavailable",
    "MalformedRequest",
    "MalformedResponse",
    "MalformedToken",
    "NetworkError",
    "NotFound",
    "Observation",
    "OutcomeEvent",
    "PendingCompensation",
    "PermissionDenied",
    "PolicyError",
    "PoolTimeout",
    "ProtocolError",
    "ProviderError",
    "RateLimited",
    "ReadTimeout",
    "Redactor",
    "Redemption",
    "RedemptionClient",
    "RedemptionError",
    "RedemptionGrant",
    "RemoteKeySet",
    "RequestTimeout",
    "RetryAfterTooLong",
    "RetryBudget",
    "RetryDetails",
    "RetryPolicy",
    "RetryStop",
    "ServerError",
    "ServiceUnavailable",
    "Severity",
    "SigningKey",
    "TokenError",
    "TokenErrorInfo",
    "TokenExpired",
    "TokenIssuer",
    "TokenNotYetValid",
    "TokenRejected",
    "TokenTooLarge",
    "TokenVerifier",
    "TooManyRedirects",
    "UnexpectedStatus",
    "UnknownKey",
    "UnsafeAlertUrl",
    "UnsupportedAlgorithm",
    "UnsupportedCriticalHeader",
    "UserCapReached",
    "UserCompensations",
    "VerificationKey",
    "WriteTimeout",
    "WrongAudience",
    "WrongIssuer",
    "WrongSubject",
    "WrongTokenType",
    "__version__",
    "build_error",
    "cap_retry_after",
    "classify",
    "counts_as_failure",
    "generate_signing_key",
    "jwk_thumbprint",
    "load_signing_key_pem",
    "parse_error_payload",
    "parse_event",
    "parse_retry_after",
    "run_backtest",
    "save_signing_key_pem",
]


def _claim(member: object) -> None:
    # Show the public path in reprs and tracebacks, as httpx does.
    if isinstance(member, type):
        member.__module__ = __name__


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    member = getattr(_importlib.import_module(module, __name__), name)
    _claim(member)
    globals()[name] = member  # later lookups skip __getattr__
    return member


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


for _name in __all__:
    if _name not in _LAZY:
        _claim(globals()[_name])
del _name
