"""Token sub-commands of ``errdiscount``: keygen, jwks, issue, verify.

Exit codes: 0 ok; 1 the operation failed (key unreadable, token rejected,
JWKS unavailable); 2 usage (bad flags or values). Secrets are never printed:
private keys go to files only, passwords come from environment variables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .._model.enums import ErrorCategory, Severity
from .._model.errors import ConfigurationError, KeyLoadError, TokenError
from .._tokens.issuer import TokenIssuer
from .._tokens.keys import (
    KeySet,
    SigningKey,
    check_kid,
    generate_signing_key,
    load_signing_key_pem,
    save_signing_key_pem,
)
from .._tokens.spec import ALGORITHMS, COMPENSATION_KINDS, SEGMENTS

__all__ = ["add_token_commands"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_MAX_FILE_BYTES = 64 * 1024


class _UsageError(Exception):
    """A flag value that cannot work: exit 2."""


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


def _fail(message: str, code: int) -> int:
    print(f"errdiscount: error: {message}", file=sys.stderr)
    return code


def _password(args: argparse.Namespace) -> str | None:
    name = getattr(args, "password_env", None)
    if not name:
        return None
    value = os.environ.get(name)
    if value is None:
        raise _UsageError(f"environment variable {name} (--password-env) is not set")
    return value


def _read_small(path: str) -> str:
    if path == "-":
        return sys.stdin.read(_MAX_FILE_BYTES + 1)[: _MAX_FILE_BYTES + 1]
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _UsageError(f"{path!r} not found") from None
    except OSError as exc:
        raise KeyLoadError(f"cannot read {path!r}: {exc.strerror}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise KeyLoadError(f"{path!r} is larger than {_MAX_FILE_BYTES} bytes")
    return data.decode("utf-8", "replace")


def _run(handler: Any, args: argparse.Namespace) -> int:
    try:
        result: int = handler(args)
        return result
    except _UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except TokenError as exc:
        print(
            json.dumps(
                {
                    "valid": False,
                    "reason": exc.reason,
                    "error": type(exc).__name__,
                    "message": str(exc),
                }
            )
        )
        return EXIT_FAILED
    except KeyLoadError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)


def _keygen(args: argparse.Namespace) -> int:
    key = generate_signing_key(args.alg, kid=args.kid)
    save_signing_key_pem(key, args.out, password=_password(args), overwrite=args.force)
    print(f"wrote {args.alg} private key to {args.out} (mode 0600), kid {key.kid}", file=sys.stderr)
    _print_json({"keys": [key.public_jwk()]})
    return EXIT_OK


def _load_keys(args: argparse.Namespace) -> list[SigningKey]:
    password = _password(args)
    return [load_signing_key_pem(Path(p), password) for p in args.key]


def _jwks(args: argparse.Namespace) -> int:
    _print_json(KeySet(_load_keys(args)).to_jwks())
    return EXIT_OK


def _issue(args: argparse.Namespace) -> int:
    key = load_signing_key_pem(Path(args.key), _password(args))
    fields: dict[str, Any] = {}
    if args.claims:
        try:
            loaded = json.loads(_read_small(args.claims))
        except ValueError:
            raise _UsageError(f"{args.claims!r} is not a JSON object") from None
        if not isinstance(loaded, dict):
            raise _UsageError(f"{args.claims!r} is not a JSON object")
        fields.update(loaded)
    flags = {
        "issuer": args.issuer,
        "audience": args.audience,
        "subject": args.subject,
        "error_code": args.error_code,
        "category": args.category,
        "severity": args.severity,
        "segment": args.segment,
        "incident": args.incident,
        "terms": args.terms,
        "alert": args.alert,
        "ttl": args.ttl,
    }
    fields.update({k: v for k, v in flags.items() if v is not None})
    if args.kind or args.amount is not None or args.unit:
        fields["compensation"] = {"kind": args.kind, "amount": args.amount, "unit": args.unit}
    allowed = set(flags) | {"compensation"}
    unknown = set(fields) - allowed
    if unknown:
        raise _UsageError(f"unknown field {sorted(unknown)[0]!r} in the claims file")
    missing = [
        n
        for n in (
            "issuer",
            "audience",
            "subject",
            "error_code",
            "category",
            "severity",
            "compensation",
        )
        if n not in fields
    ]
    if missing:
        raise _UsageError(f"missing {missing[0].replace('_', '-')} (flag or claims file field)")
    issuer = TokenIssuer(key, issuer=fields.pop("issuer"), audience=fields.pop("audience"))
    print(issuer.issue(**fields))
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from .._tokens.verifier import TokenVerifier

    token = (sys.stdin.read(65536) if args.token == "-" else args.token).strip()
    common: dict[str, Any] = {
        "issuer": args.issuer,
        "audience": args.audience,
        "leeway": args.leeway,
    }
    if args.jwks_url:
        verifier = TokenVerifier.from_jwks_url(
            args.jwks_url, allow_http_loopback=args.allow_http_loopback, **common
        )
    else:
        verifier = TokenVerifier(KeySet.from_jwks(_read_small(args.jwks)), **common)
    result = verifier.verify(token, subject=args.subject)
    _print_json(
        {
            "valid": True,
            "header": {"alg": result.alg, "kid": result.kid, "typ": result.typ},
            "claims": result.claims(),
        }
    )
    return EXIT_OK


def _number(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _kid(text: str) -> str:
    try:
        return check_kid(text)
    except KeyLoadError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _password_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-env",
        metavar="VAR",
        help="name of an environment variable holding the PEM password (never a flag value)",
    )


def add_token_commands(commands: Any) -> None:
    """Register keygen, jwks, issue and verify on the ``errdiscount`` sub-parsers."""
    keygen = commands.add_parser(
        "keygen", help="generate a signing key: write a PEM file, print its public JWKS"
    )
    keygen.add_argument("--alg", choices=ALGORITHMS, default="EdDSA", help="default: EdDSA")
    keygen.add_argument("--out", required=True, help="PEM file to write (PKCS#8, mode 0600)")
    keygen.add_argument(
        "--kid",
        type=_kid,
        help="key id, 1-128 characters, kept in the PEM file (default: RFC 7638 thumbprint)",
    )
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    _password_flag(keygen)
    keygen.set_defaults(handler=lambda a: _run(_keygen, a))

    jwks = commands.add_parser("jwks", help="print the public JWKS of one or more PEM keys")
    jwks.add_argument("key", nargs="+", help="PEM private key file(s)")
    _password_flag(jwks)
    jwks.set_defaults(handler=lambda a: _run(_jwks, a))

    issue = commands.add_parser("issue", help="mint a discount token; prints it")
    issue.add_argument("--key", required=True, help="PEM private key file")
    issue.add_argument("--claims", help="JSON file ('-' = stdin) with any of the fields below")
    issue.add_argument("--issuer", help="iss claim")
    issue.add_argument("--audience", help="aud claim (the redemption service)")
    issue.add_argument("--subject", help="sub claim: the user the compensation is for")
    issue.add_argument("--error-code", help="err.code, e.g. PAY_001")
    issue.add_argument("--category", choices=[c.value for c in ErrorCategory])
    issue.add_argument("--severity", choices=[s.value for s in Severity])
    issue.add_argument("--kind", choices=sorted(COMPENSATION_KINDS), help="comp.kind")
    issue.add_argument("--amount", type=_number, help="comp.amount (> 0)")
    issue.add_argument("--unit", help="comp.unit: ISO 4217 code, points or days")
    issue.add_argument("--ttl", type=float, help="lifetime in seconds (default 30 days)")
    issue.add_argument("--segment", choices=sorted(SEGMENTS))
    issue.add_argument("--incident", help="incident id")
    issue.add_argument("--terms", help="https URL of the conditions")
    issue.add_argument("--alert", help="https alert URL")
    _password_flag(issue)
    issue.set_defaults(handler=lambda a: _run(_issue, a))

    verify = commands.add_parser(
        "verify", help="verify a token; print its claims, or the typed error (exit 1)"
    )
    verify.add_argument("token", help="the compact token, or '-' to read it from stdin")
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwks", help="JWKS file ('-' = stdin)")
    source.add_argument("--jwks-url", help="JWKS URL (https)")
    verify.add_argument("--issuer", required=True, help="expected iss")
    verify.add_argument("--audience", required=True, help="expected aud")
    verify.add_argument("--subject", help="expected sub")
    verify.add_argument("--leeway", type=float, default=30.0, help="clock skew, s (default 30)")
    verify.add_argument(
        "--allow-http-loopback", action="store_true", help="allow http://127.0.0.1 JWKS URLs"
    )
    verify.set_defaults(handler=lambda a: _run(_verify, a))
