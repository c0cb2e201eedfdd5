"""One spelling of the JSON in tokens and key sets: UTF-8 only, finite numbers only.

Each case is a token whose claims are otherwise valid and correctly signed by a
trusted key, so the only reason to refuse it is the spelling of its JSON.
"""

from __future__ import annotations

import codecs
import json

import pytest

from errdiscount_sdk import KeyLoadError, KeySet, MalformedToken, TokenVerifier
from errdiscount_sdk._tokens.strict_json import StrictJsonError, loads_strict
from tests.support.token_helpers import AUDIENCE, ISSUER, b64, claims, forge, header, key_for

ED = key_for("EdDSA")


@pytest.fixture(scope="module")
def verifier() -> TokenVerifier:
    return TokenVerifier(KeySet([ED]), issuer=ISSUER, audience=AUDIENCE)


def _text(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


ENCODINGS = [
    ("utf-16-le", b""),
    ("utf-16-be", b""),
    ("utf-16", b""),  # with its BOM
    ("utf-32-le", b""),
    ("utf-32-be", b""),
    ("utf-32", b""),
    ("utf-8", codecs.BOM_UTF8),
]


@pytest.mark.parametrize(("encoding", "prefix"), ENCODINGS)
def test_payload_in_another_unicode_encoding_is_refused(verifier, encoding, prefix) -> None:
    payload = prefix + _text(claims()).encode(encoding)
    with pytest.raises(MalformedToken, match="strict JSON"):
        verifier.verify(forge(ED, payload=b64(payload)))


@pytest.mark.parametrize(("encoding", "prefix"), ENCODINGS)
def test_header_in_another_unicode_encoding_is_refused(verifier, encoding, prefix) -> None:
    head = prefix + _text(header(ED)).encode(encoding)
    with pytest.raises(MalformedToken, match="strict JSON"):
        verifier.verify(forge(ED, head=b64(head)))


@pytest.mark.parametrize(
    "number", ["1e400", "-1e400", "1E999", "NaN", "Infinity", "-Infinity", "1.8e308"]
)
def test_non_finite_numbers_are_refused_even_in_ignored_claims(verifier, number) -> None:
    # An unknown top-level claim is ignored by the claim rules: only the parser can refuse.
    text = _text(claims())[:-1] + f',"x":{number}}}'
    with pytest.raises(MalformedToken, match="strict JSON"):
        verifier.verify(forge(ED, payload=b64(text.encode())))


def test_the_same_token_in_utf8_verifies(verifier) -> None:
    """Control: the cases above differ from an accepted token only in their spelling."""
    text = _text(claims())[:-1] + ',"x":1e300,"y":"caf\u00e9"}'
    assert verifier.verify(forge(ED, payload=b64(text.encode()))).sub == "user-42"


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf{}",
        '{"a":1}'.encode("utf-16"),
        b'{"a":1,"a":2}',
        b'{"a":NaN}',
        b'{"a":1e400}',
        b'{"a":"\xff"}',
        b"{",
    ],
)
def test_loads_strict_refuses(data: bytes) -> None:
    with pytest.raises(StrictJsonError):
        loads_strict(data)


def test_loads_strict_accepts_plain_utf8() -> None:
    assert loads_strict('{"a":[1,2.5,-0.0,"\u00e9"]}'.encode()) == {"a": [1, 2.5, -0.0, "é"]}


@pytest.mark.parametrize(
    "document",
    [
        codecs.BOM_UTF8 + _text(KeySet([ED]).to_jwks()).encode(),
        _text(KeySet([ED]).to_jwks()).encode("utf-16"),
        _text(KeySet([ED]).to_jwks())[:-1].encode() + b',"x":1e400}',
    ],
)
def test_jwks_documents_follow_the_same_rule(document: bytes) -> None:
    with pytest.raises(KeyLoadError, match="strict"):
        KeySet.from_jwks(document)
