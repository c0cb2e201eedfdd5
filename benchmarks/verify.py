"""Token verification speed: ours against PyJWT and the raw floor, in one run.

For EdDSA, ES256 and RS256 this prints µs per verification of:

- floor:    split + base64url decode + raw `cryptography` verify + json.loads
- jwt:      `jwt.decode` with a pre-loaded key object (audience, issuer, require)
- jwks:     `PyJWKClient.get_signing_key_from_jwt` (warm cache) + `jwt.decode`
- ours:     `TokenVerifier(KeySet).verify`
- ours-url: `TokenVerifier.from_jwks_url(...)` with a warm `RemoteKeySet`

Runs are interleaved round-robin (``--repeat`` rounds) and the median is
reported. Targets: ours <= 1.10 x jwt and <= 0.83 x jwks. Takes about a minute.

    python benchmarks/verify.py [--repeat 9] [--seconds 0.1]
"""

from __future__ import annotations

import argparse
import base64
import http.server
import json
import statistics
import sys
import threading
import timeit
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from errdiscount_sdk import KeySet, TokenIssuer, TokenVerifier, generate_signing_key

ISSUER = "https://api.example.com"
AUDIENCE = "https://redeem.example.com"
REQUIRED = ["iss", "sub", "aud", "iat", "exp", "jti"]


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def floor_for(alg: str, public_key: object) -> Callable[[str], object]:
    ecdsa, pkcs1, sha256 = ec.ECDSA(hashes.SHA256()), padding.PKCS1v15(), hashes.SHA256()

    def floor(token: str) -> object:
        head, payload, sig = token.split(".")
        signature = _b64(sig)
        data = f"{head}.{payload}".encode()
        if alg == "ES256":
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            public_key.verify(encode_dss_signature(r, s), data, ecdsa)  # type: ignore[attr-defined]
        elif alg == "RS256":
            public_key.verify(signature, data, pkcs1, sha256)  # type: ignore[attr-defined]
        else:
            public_key.verify(signature, data)  # type: ignore[attr-defined]
        json.loads(_b64(head))
        return json.loads(_b64(payload))

    return floor


class _JwksHandler(http.server.BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("Cache-Control", "max-age=3600")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def serve_jwks(jwks: dict[str, object]) -> tuple[str, http.server.HTTPServer]:
    handler = type("H", (_JwksHandler,), {"body": json.dumps(jwks).encode()})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/jwks.json", server


def variants(alg: str) -> tuple[dict[str, Callable[[], object]], http.server.HTTPServer]:
    key = generate_signing_key(alg)
    issuer = TokenIssuer(key, issuer=ISSUER, audience=AUDIENCE)
    token = issuer.issue(
        subject="user-42",
        error_code="PAY_001",
        category="network",
        severity="moderate",
        compensation={"kind": "membership_extension", "amount": 30, "unit": "days"},
    )
    jwks = issuer.jwks()
    url, server = serve_jwks(jwks)
    public = key.private_key.public_key()
    floor = floor_for(alg, public)
    ours = TokenVerifier(KeySet.from_jwks(jwks), issuer=ISSUER, audience=AUDIENCE)
    ours_url = TokenVerifier.from_jwks_url(
        url, issuer=ISSUER, audience=AUDIENCE, allow_http_loopback=True
    )
    client = jwt.PyJWKClient(url)
    options = {"require": REQUIRED}

    def pyjwt() -> object:
        return jwt.decode(
            token, public, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER, options=options
        )

    def pyjwks() -> object:
        signing = client.get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            signing.key,
            algorithms=[alg],
            audience=AUDIENCE,
            issuer=ISSUER,
            options=options,
        )

    table: dict[str, Callable[[], object]] = {
        "floor": lambda: floor(token),
        "jwt": pyjwt,
        "jwks": pyjwks,
        "ours": lambda: ours.verify(token),
        "ours-url": lambda: ours_url.verify(token),
    }
    for run in table.values():  # warm caches and check every variant accepts the token
        run()
    return table, server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="interleaved rounds (default 9)")
    parser.add_argument("--seconds", type=float, default=0.1, help="time per sample (default 0.1)")
    args = parser.parse_args()
    print(
        f"PyJWT {jwt.__version__}, Python {sys.version.split()[0]}; µs/verify, median of "
        f"{args.repeat} interleaved rounds"
    )
    header = f"{'alg':6} {'floor':>7} {'jwt':>7} {'jwks':>7} {'ours':>7} {'ours-url':>8}"
    print(header + f" {'ours/jwt':>9} {'ours/jwks':>10}  target")
    all_ok = True
    for alg in ("EdDSA", "ES256", "RS256"):
        table, server = variants(alg)
        numbers = {
            name: max(1, int(args.seconds / timeit.timeit(fn, number=20) * 20))
            for name, fn in table.items()
        }
        samples: dict[str, list[float]] = {name: [] for name in table}
        for _ in range(args.repeat):
            for name, fn in table.items():
                elapsed = timeit.timeit(fn, number=numbers[name])
                samples[name].append(elapsed / numbers[name] * 1e6)
        server.shutdown()
        med = {name: statistics.median(values) for name, values in samples.items()}
        r_jwt, r_jwks = med["ours"] / med["jwt"], med["ours"] / med["jwks"]
        ok = r_jwt <= 1.10 and r_jwks <= 0.83
        all_ok &= ok
        print(
            f"{alg:6} {med['floor']:7.1f} {med['jwt']:7.1f} {med['jwks']:7.1f} "
            f"{med['ours']:7.1f} {med['ours-url']:8.1f} {r_jwt:9.2f} {r_jwks:10.2f}  "
            f"{'met' if ok else 'MISSED'}"
        )
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
