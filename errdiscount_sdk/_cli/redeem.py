"""``errdiscount redeem TOKEN --server URL``: redeem a discount token at a server.

Transient failures are retried by the SDK's retry engine (``--attempts``, default 3,
honouring ``Retry-After``) with the same ``Idempotency-Key``. Exit codes: 0 redeemed
(the redemption is printed as JSON); 1 the server refused or could not be reached
(error class, code, status, message and attempts go to stderr as JSON); 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._http.retry import RetryPolicy
from .._model.errors import ApiError, ConfigurationError
from .._redeem.client import Redemption, RedemptionClient
from .args import bounded_int, positive_seconds

__all__ = ["add_redeem_command"]

_MAX_TOKEN_CHARS = 16 * 1024


def redemption_to_json(redemption: Redemption) -> dict[str, Any]:
    grant = {
        name: value
        for name, value in (
            ("kind", redemption.grant.kind),
            ("coupon_code", redemption.grant.coupon_code),
            ("points", redemption.grant.points),
            ("days", redemption.grant.days),
            ("amount", redemption.grant.amount),
            ("unit", redemption.grant.unit),
            ("count", redemption.grant.count),
        )
        if value is not None
    }
    return {
        "id": redemption.id,
        "jti": redemption.jti,
        "subject": redemption.subject,
        "compensation": redemption.compensation.to_claim(),
        "grant": grant,
        "redeemed_at": redemption.redeemed_at.isoformat(),
    }


def _cmd_redeem(args: argparse.Namespace) -> int:
    token = args.token
    if token == "-":
        token = sys.stdin.read(_MAX_TOKEN_CHARS + 1)
    token = token.strip()
    if not token or len(token) > _MAX_TOKEN_CHARS:
        print("errdiscount: error: the token is empty or too long", file=sys.stderr)
        return 2
    try:
        policy = RetryPolicy(max_attempts=args.attempts)
        with RedemptionClient(args.server, timeout=args.timeout, retry=policy) as client:
            redemption = client.redeem(token, idempotency_key=args.idempotency_key)
    except ConfigurationError as exc:
        print(f"errdiscount: error: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        error = {
            "error": type(exc).__name__,
            "error_code": exc.error_code,
            "status": exc.status_code,
            "message": exc.payload.message if exc.payload else str(exc),
            "attempts": exc.attempts,
        }
        print(json.dumps(error), file=sys.stderr)
        return 1
    print(json.dumps(redemption_to_json(redemption), indent=2))
    return 0


def add_redeem_command(commands: Any) -> None:
    """Register ``redeem`` on the CLI's sub-command parsers."""
    redeem = commands.add_parser("redeem", help="redeem a discount token at a redemption server")
    redeem.add_argument("token", metavar="TOKEN", help="the compact token, or - to read stdin")
    redeem.add_argument("--server", required=True, help="base URL of the redemption server")
    redeem.add_argument(
        "--idempotency-key", help="reuse a key to retry a redemption safely (default: random)"
    )
    redeem.add_argument(
        "--timeout", type=positive_seconds, default=10.0, help="seconds per attempt (> 0)"
    )
    redeem.add_argument(
        "--attempts",
        type=bounded_int(1, 20),
        default=3,
        help="attempts at most on transient failures, the first included (1-20; default 3)",
    )
    redeem.set_defaults(handler=_cmd_redeem)
