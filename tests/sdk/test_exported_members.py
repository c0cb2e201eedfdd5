import errdiscount_sdk

WAVE_1_NAMES = frozenset(
    {
        "AlertUrlPolicy",
        "AlreadyRedeemed",
        "ApiError",
        "AsyncClient",
        "AsyncRedemptionClient",
        "AsyncRemoteKeySet",
        "AsyncTokenVerifier",
        "AuthenticationRequired",
        "BadGateway",
        "BudgetExhausted",
        "BusinessError",
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
        "DiscountToken",
        "DnsFailure",
        "ErrDiscountError",
        "ErrorCategory",
        "ErrorPayload",
        "GatewayTimeout",
        "IdempotencyConflict",
        "InvalidClaims",
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
        "PendingCompensation",
        "PermissionDenied",
        "PolicyError",
        "PoolTimeout",
        "ProtocolError",
        "RateLimited",
        "ReadTimeout",
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
        "generate_signing_key",
        "jwk_thumbprint",
        "load_signing_key_pem",
        "parse_error_payload",
        "parse_retry_after",
        "save_signing_key_pem",
    }
)
"""What wave 1 exported: later releases add names, never drop one."""


def test_every_wave_1_name_is_still_exported() -> None:
    assert WAVE_1_NAMES - set(errdiscount_sdk.__all__) == set()


def test_all_is_sorted_and_exact() -> None:
    exported = errdiscount_sdk.__all__
    # Classes first, then functions and dunders: the order ruff's RUF022 keeps.
    assert exported == sorted(exported, key=lambda name: (not name[0].isupper(), name))
    public = {
        name
        for name in dir(errdiscount_sdk)
        if not name.startswith("_") and not _is_submodule(name)
    }
    assert public == {name for name in exported if not name.startswith("_")}


def test_exported_members_claim_the_public_module() -> None:
    for name in errdiscount_sdk.__all__:
        member = getattr(errdiscount_sdk, name)
        if hasattr(member, "__module__") and isinstance(member, type):
            assert member.__module__ == "errdiscount_sdk", name


def _is_submodule(name: str) -> bool:
    import types

    return isinstance(getattr(errdiscount_sdk, name), types.ModuleType)


def test_importing_the_package_loads_no_token_or_policy_machinery() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, errdiscount_sdk\n"
        "heavy = ('cryptography', 'asyncio', 'tomllib', 'tenacity')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
        "errdiscount_sdk.TokenVerifier, errdiscount_sdk.CompensationPolicy\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "[]"
    assert "cryptography" in out[1] and "tomllib" in out[1]


def test_lazy_names_are_the_same_objects_as_their_modules() -> None:
    from errdiscount_sdk._tokens.verifier import TokenVerifier

    assert errdiscount_sdk.TokenVerifier is TokenVerifier
    assert "TokenVerifier" in dir(errdiscount_sdk)


def _isort_order(name: str) -> tuple[int, str]:
    # RUF022's order for modules with constants: SCREAMING_CASE, then CamelCase, then the rest.
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_reports_all_is_sorted_and_exact() -> None:
    import errdiscount_sdk.reports as reports

    exported = reports.__all__
    assert exported == sorted(exported, key=_isort_order)
    public = {name for name in dir(reports) if not name.startswith("_")}
    assert public == set(exported)
    for name in exported:
        member = getattr(reports, name)
        assert not isinstance(member, type) or member.__module__.startswith("errdiscount_sdk."), (
            name
        )
