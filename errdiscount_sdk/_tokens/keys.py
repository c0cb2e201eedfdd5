"""Signing keys, PEM files, JWK thumbprints, key rings and verification key sets.

Every verification key carries the one algorithm it may be used with, derived
from the JWK itself (``kty``/``crv``, checked against ``alg``) and never from a
token header: this is what defeats algorithm-confusion attacks.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .._model.errors import KeyLoadError
from .._model.wire import MAX_JWKS_BYTES, MAX_KID_CHARS
from .spec import ALGORITHMS
from .strict_json import loads_strict

__all__ = [
    "MAX_JWKS_BYTES",
    "KeyRing",
    "KeySet",
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "VerificationKey",
    "b64url_decode",
    "b64url_encode",
    "check_kid",
    "generate_signing_key",
    "jwk_thumbprint",
    "load_signing_key_pem",
    "save_signing_key_pem",
]

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey

_MAX_KEYS = 64
_MAX_PEM_BYTES = 64 * 1024
_MIN_RSA_BITS = 2048
_MAX_RSA_BITS = 8192
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7468 §5.2 explanatory text before the PEM block: parsers (OpenSSL,
# cryptography) skip it, our loader reads the key id from it.
_PEM_KID_LABEL = b"kid: "
_PEM_BEGIN = b"-----BEGIN"


def check_kid(kid: object, error: type[Exception] = KeyLoadError) -> str:
    """A key id as format v1 allows it: 1 to `MAX_KID_CHARS` characters, no control characters.

    Control characters are refused so that a kid always fits on its PEM line and in logs.

    Raises:
        KeyLoadError (or ``error``): naming the rule.
    """
    if (
        type(kid) is not str
        or not 0 < len(kid) <= MAX_KID_CHARS
        or not kid.isprintable()
        or kid != kid.strip()
    ):
        raise error(
            f"kid must be 1 to {MAX_KID_CHARS} printable characters without surrounding spaces"
        )
    return kid


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes | None:
    """Decode canonical unpadded base64url; None if ``text`` is not exactly that.

    Re-encoding and comparing rejects padding, characters outside the
    alphabet (which the decoder would skip) and non-zero trailing bits: one
    value has exactly one spelling, so a token cannot be re-spelled.
    """
    if not text.isascii():
        return None
    raw = text.encode("ascii")
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(data).rstrip(b"=") != raw:
        return None
    return data


def _int_to_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big"))


def algorithm_for_key(key: PrivateKey | PublicKey) -> str:
    """The one algorithm a key may sign or verify with.

    Raises:
        KeyLoadError: other key types, curves other than P-256, RSA under 2048 bits.
    """
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyLoadError(f"EC curve {key.curve.name} is not supported (only P-256)")
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if not _MIN_RSA_BITS <= key.key_size <= _MAX_RSA_BITS:
            raise KeyLoadError(
                f"RSA keys must have {_MIN_RSA_BITS} to {_MAX_RSA_BITS} bits, not {key.key_size}"
            )
        return "RS256"
    raise KeyLoadError(f"unsupported key type {type(key).__name__}")


def _public_members(key: PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of a public key, as strings."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": _int_to_b64(numbers.x, 32),
            "y": _int_to_b64(numbers.y, 32),
        }
    numbers_rsa = key.public_numbers()
    return {"e": _int_to_b64(numbers_rsa.e), "kty": "RSA", "n": _int_to_b64(numbers_rsa.n)}


def jwk_thumbprint(key: PublicKey | Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint (base64url) of a public key or public JWK.

    Raises:
        KeyLoadError: the JWK lacks a required member.
    """
    if isinstance(key, Mapping):
        required = {
            "OKP": ("crv", "kty", "x"),
            "EC": ("crv", "kty", "x", "y"),
            "RSA": ("e", "kty", "n"),
        }
        names = required.get(str(key.get("kty")))
        if names is None or any(type(key.get(n)) is not str for n in names):
            raise KeyLoadError("JWK lacks the members its thumbprint needs")
        members = {n: key[n] for n in names}
    else:
        members = _public_members(key)
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


@attrs.frozen
class VerificationKey:
    """A trusted public key with its pinned algorithm."""

    kid: str
    algorithm: str
    public_key: PublicKey = attrs.field(repr=False, eq=False)

    def to_jwk(self) -> dict[str, str]:
        jwk = _public_members(self.public_key)
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return jwk


@attrs.frozen
class SigningKey:
    """A private signing key with its algorithm and ``kid``. Never in reprs or logs."""

    private_key: PrivateKey = attrs.field(repr=False, eq=False)
    algorithm: str
    kid: str

    @classmethod
    def from_private_key(cls, private_key: PrivateKey, *, kid: str | None = None) -> SigningKey:
        """Wrap a cryptography private key; ``kid`` defaults to its RFC 7638 thumbprint.

        Raises:
            KeyLoadError: an unusable key, or a ``kid`` `check_kid` refuses.
        """
        algorithm = algorithm_for_key(private_key)
        public = private_key.public_key()
        chosen = jwk_thumbprint(public) if kid is None else check_kid(kid)
        return cls(private_key, algorithm, chosen)

    def public_key(self) -> VerificationKey:
        return VerificationKey(self.kid, self.algorithm, self.private_key.public_key())

    def public_jwk(self) -> dict[str, str]:
        return self.public_key().to_jwk()


def generate_signing_key(algorithm: str = "EdDSA", *, kid: str | None = None) -> SigningKey:
    """A fresh key: Ed25519 for ``EdDSA``, P-256 for ``ES256``, RSA-3072 for ``RS256``.

    Raises:
        KeyLoadError: unknown algorithm.
    """
    private: PrivateKey
    if algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        raise KeyLoadError(f"algorithm must be one of {list(ALGORITHMS)}, not {algorithm!r}")
    return SigningKey.from_private_key(private, kid=kid)


def _read_pem(source: str | bytes | os.PathLike[str]) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and "-----BEGIN" in source:
        return source.encode("ascii", "replace")
    path = Path(source)
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_PEM_BYTES + 1)
    except OSError as exc:
        raise KeyLoadError(f"cannot read key file {str(path)!r}: {exc.strerror}") from None
    if len(data) > _MAX_PEM_BYTES:
        raise KeyLoadError(f"key file {str(path)!r} is larger than {_MAX_PEM_BYTES} bytes")
    return data


def load_signing_key_pem(
    source: str | bytes | os.PathLike[str],
    password: bytes | str | None = None,
    *,
    kid: str | None = None,
) -> SigningKey:
    """Load a PEM private key (PKCS#8 or traditional) from a path or PEM bytes/text.

    The key id is ``kid`` when given, else the ``kid: ...`` line that
    `save_signing_key_pem` writes before the PEM block, else the RFC 7638
    thumbprint of the public key.

    Raises:
        KeyLoadError: unreadable file, wrong password, not a private key,
            a key type or size format v1 does not allow, or a bad ``kid`` line.
    """
    data = _read_pem(source)
    if kid is None:
        kid = _pem_kid(data)
    secret = password.encode() if isinstance(password, str) else password
    try:
        private = serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError, _CryptoUnsupported):
        # The library's message can echo key material; ours never does.
        raise KeyLoadError("not a PEM private key, or the password is wrong or missing") from None
    if not isinstance(
        private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise KeyLoadError(f"unsupported key type {type(private).__name__}")
    return SigningKey.from_private_key(private, kid=kid)


def _pem_kid(data: bytes) -> str | None:
    """The kid of a ``kid: ...`` line in the explanatory text before the PEM block."""
    start = data.find(_PEM_BEGIN)
    found: list[str] = []
    for line in data[: max(start, 0)].splitlines():
        if line.startswith(_PEM_KID_LABEL):
            try:
                found.append(line[len(_PEM_KID_LABEL) :].decode("utf-8").rstrip("\r"))
            except UnicodeDecodeError:
                raise KeyLoadError("the key file's kid line is not UTF-8") from None
    if len(found) > 1:
        raise KeyLoadError("the key file has more than one kid line")
    return check_kid(found[0]) if found else None


def signing_key_to_pem(key: SigningKey, password: bytes | str | None = None) -> bytes:
    """PKCS#8 PEM of the private key, encrypted when a password is given.

    A kid other than the key's RFC 7638 thumbprint (the default, which the
    loader recomputes) is kept on a ``kid: <kid>`` line before the PEM block:
    RFC 7468 explanatory text, which OpenSSL and other PEM readers skip and
    `load_signing_key_pem` reads back.
    """
    secret = password.encode() if isinstance(password, str) else password
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    if key.kid == jwk_thumbprint(key.private_key.public_key()):
        return pem
    return _PEM_KID_LABEL + check_kid(key.kid).encode("utf-8") + b"\n" + pem


def save_signing_key_pem(
    key: SigningKey,
    path: str | os.PathLike[str],
    *,
    password: bytes | str | None = None,
    overwrite: bool = False,
) -> None:
    """Write the key as PKCS#8 PEM with its kid line, readable by the owner only (mode 0600).

    Raises:
        KeyLoadError: the file exists (and ``overwrite`` is false) or cannot be written.
    """
    data = signing_key_to_pem(key, password)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except FileExistsError:
        raise KeyLoadError(f"{os.fspath(path)!r} exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyLoadError(f"cannot write {os.fspath(path)!r}: {exc.strerror}") from None


def _b64_member(jwk: Mapping[str, Any], name: str, where: str) -> bytes:
    value = jwk.get(name)
    data = b64url_decode(value) if type(value) is str else None
    if not data:
        raise KeyLoadError(f"{where}: member {name!r} must be canonical base64url")
    return data


def _key_from_jwk(jwk: Any, where: str) -> VerificationKey | None:
    """Parse one public JWK; None for keys that are not for signatures."""
    if not isinstance(jwk, Mapping):
        raise KeyLoadError(f"{where}: must be a JSON object")
    if jwk.get("use") == "enc":
        return None
    if _PRIVATE_MEMBERS & set(jwk):
        # A published private (or symmetric) key is a leak; refuse to use the set at all.
        raise KeyLoadError(f"{where}: contains private or symmetric key material")
    kty = jwk.get("kty")
    public: PublicKey
    try:
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise KeyLoadError(f"{where}: OKP curve must be Ed25519")
            public = ed25519.Ed25519PublicKey.from_public_bytes(_b64_member(jwk, "x", where))
        elif kty == "EC":
            if jwk.get("crv") != "P-256":
                raise KeyLoadError(f"{where}: EC curve must be P-256")
            x, y = _b64_member(jwk, "x", where), _b64_member(jwk, "y", where)
            if len(x) != 32 or len(y) != 32:
                raise KeyLoadError(f"{where}: P-256 coordinates must be 32 bytes")
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            )
            public = numbers.public_key()
        elif kty == "RSA":
            n = int.from_bytes(_b64_member(jwk, "n", where), "big")
            e = int.from_bytes(_b64_member(jwk, "e", where), "big")
            if not 3 <= e < 2**32 or e % 2 == 0:
                raise KeyLoadError(f"{where}: RSA exponent is not acceptable")
            if not _MIN_RSA_BITS <= n.bit_length() <= _MAX_RSA_BITS:
                raise KeyLoadError(f"{where}: RSA modulus must have 2048 to 8192 bits")
            public = rsa.RSAPublicNumbers(e, n).public_key()
        else:
            raise KeyLoadError(f"{where}: key type {kty!r} is not allowed (OKP, EC, RSA only)")
    except KeyLoadError:
        raise
    except (ValueError, TypeError, _CryptoUnsupported):
        raise KeyLoadError(f"{where}: not a valid public key") from None
    algorithm = algorithm_for_key(public)
    declared = jwk.get("alg")
    if declared is not None and declared != algorithm:
        raise KeyLoadError(f"{where}: alg {declared!r} does not fit a {kty} key ({algorithm})")
    if jwk.get("use", "sig") != "sig":
        raise KeyLoadError(f"{where}: use must be 'sig'")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise KeyLoadError(f"{where}: key_ops does not allow 'verify'")
    kid = jwk.get("kid")
    if kid is None:
        kid = jwk_thumbprint(jwk)
    if type(kid) is not str or not 0 < len(kid) <= MAX_KID_CHARS:
        raise KeyLoadError(f"{where}: kid must be a string of 1 to {MAX_KID_CHARS} characters")
    return VerificationKey(kid, algorithm, public)


class KeySet:
    """Trusted public keys by ``kid``, each pinned to one algorithm. Immutable."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[VerificationKey | SigningKey] = ()) -> None:
        found: dict[str, VerificationKey] = {}
        for key in keys:
            public = key.public_key() if isinstance(key, SigningKey) else key
            if public.kid in found:
                raise KeyLoadError(f"duplicate kid {public.kid!r}")
            found[public.kid] = public
        self._keys = found

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any] | str | bytes) -> KeySet:
        """Parse a JWKS document (``{"keys": [...]}``) as JSON text or a mapping.

        Keys with ``"use": "enc"`` are skipped; anything else that cannot be a
        v1 verification key (``oct``, RSA < 2048 bits, unknown kty/crv, an
        ``alg`` that does not fit the key, private members) rejects the set.

        Raises:
            KeyLoadError: naming the offending key.
        """
        if isinstance(jwks, str | bytes):
            if len(jwks) > MAX_JWKS_BYTES:
                raise KeyLoadError(f"JWKS is larger than {MAX_JWKS_BYTES} bytes")
            data = jwks.encode("utf-8", "surrogatepass") if isinstance(jwks, str) else jwks
            try:
                jwks = loads_strict(data)
            except (ValueError, RecursionError):  # not UTF-8, BOM, duplicates, inf, NaN
                raise KeyLoadError("JWKS is not strict UTF-8 JSON (or repeats a member)") from None
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise KeyLoadError('JWKS must be an object with a "keys" array')
        entries = jwks["keys"]
        if len(entries) > _MAX_KEYS:
            raise KeyLoadError(f"JWKS has more than {_MAX_KEYS} keys")
        parsed = [_key_from_jwk(entry, f"keys[{i}]") for i, entry in enumerate(entries)]
        return cls(key for key in parsed if key is not None)

    def get(self, kid: str) -> VerificationKey | None:
        return self._keys.get(kid)

    def to_jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.to_jwk() for key in self._keys.values()]}

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __iter__(self) -> Iterator[VerificationKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeySet(kids={list(self._keys)!r})"


@attrs.frozen
class RetiredKey:
    """A key no longer used to sign, published until ``publish_until`` (Unix time)."""

    key: SigningKey
    publish_until: float


class KeyRing:
    """The active signing key plus retired keys still published in the JWKS.

    A retired key stays in `jwks` until every token it signed has expired:
    ``rotate`` retires the active key for ``max_token_ttl`` from now, and the
    issuer refuses TTLs longer than ``max_token_ttl``. Thread-safe.
    """

    def __init__(
        self,
        active: SigningKey,
        *,
        retired: Sequence[RetiredKey] = (),
        max_token_ttl: dt.timedelta = dt.timedelta(days=30),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_token_ttl <= dt.timedelta(0):
            raise KeyLoadError("max_token_ttl must be positive")
        self._lock = threading.Lock()
        self._active = active
        self._retired = list(retired)
        self.max_token_ttl = max_token_ttl
        self._clock = clock

    @property
    def active(self) -> SigningKey:
        with self._lock:
            return self._active

    def rotate(self, new_active: SigningKey | None = None) -> SigningKey:
        """Make ``new_active`` (or a fresh key of the same algorithm) the signing key.

        Returns:
            the new active key.
        """
        key = new_active or generate_signing_key(self.active.algorithm)
        with self._lock:
            if key.kid == self._active.kid or any(r.key.kid == key.kid for r in self._retired):
                raise KeyLoadError(f"kid {key.kid!r} is already in the ring")
            until = self._clock() + self.max_token_ttl.total_seconds()
            self._retired.append(RetiredKey(self._active, until))
            self._active = key
        return key

    def published(self) -> list[SigningKey]:
        """The active key and the retired keys whose tokens may still be valid."""
        now = self._clock()
        with self._lock:
            self._retired = [r for r in self._retired if r.publish_until > now]
            return [self._active, *(r.key for r in self._retired)]

    def key_set(self) -> KeySet:
        return KeySet(self.published())

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS to publish (no private members)."""
        return self.key_set().to_jwks()

    def __repr__(self) -> str:
        return f"KeyRing(active={self._active.kid!r}, retired={len(self._retired)})"
