"""The webhook sink alone: Standard Webhooks signatures (checked by the official
library), secret rotation, status handling and the SSRF guard after DNS."""

from __future__ import annotations

import asyncio
import json

import pytest
from standardwebhooks.webhooks import Webhook

from server_stub.workers._sinks import (
    Delivered,
    Failed,
    Gone,
    WebhookSink,
    WebhookUrlRefused,
    check_webhook_url,
    decode_secret,
    sign,
)
from tests.support.webhook_receiver import new_secret, receiving

BODY = json.dumps({"type": "compensation.issued", "timestamp": "x", "data": {}}).encode()


def test_signatures_verify_with_the_official_library_for_each_rotated_secret() -> None:
    old, new = new_secret(), new_secret()
    header = sign([decode_secret(old), decode_secret(new)], "evt_1", 1_700_000_000, BODY)
    assert header.count("v1,") == 2 and " " in header
    for secret in (old, new):
        hook = Webhook(secret)
        expected = hook.sign("evt_1", _at(1_700_000_000), BODY.decode())
        assert expected in header.split(" ")


def _at(seconds: int):  # type: ignore[no-untyped-def]
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


@pytest.mark.parametrize("secret", ["nope", "whsec_!!!", "whsec_" + "QUFB", "whsec_" + "A" * 200])
def test_bad_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        decode_secret(secret)


@pytest.mark.parametrize(
    "url",
    [
        "http://crm.example/hooks",
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/hooks",
        "https://169.254.169.254/latest",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://user:pw@crm.example/hooks",
        "ftp://crm.example/",
    ],
)
def test_the_url_form_is_guarded_without_allow_private(url: str) -> None:
    with pytest.raises(WebhookUrlRefused):
        check_webhook_url(url, allow_private=False)


def test_names_resolving_to_private_addresses_are_refused_after_dns() -> None:
    # "localhost" passes the form check (a name), then resolves to loopback.
    check_webhook_url("https://localhost/hooks", allow_private=False)
    sink = WebhookSink("s1", "https://localhost:9/hooks", [new_secret()])

    async def attempt() -> object:
        try:
            return await sink.deliver("evt_1", "compensation.issued", BODY)
        finally:
            await sink.close()

    outcome = asyncio.run(attempt())
    assert isinstance(outcome, Failed)
    assert "private address" in outcome.error


@pytest.mark.parametrize(
    ("script", "expected"), [([204], Delivered), ([410], Gone), ([302], Failed), ([500], Failed)]
)
def test_statuses(script: list[int], expected: type) -> None:
    with receiving(script=list(script), retry_after="7") as receiver:
        sink = WebhookSink("s1", receiver.url, [receiver.secret], allow_private=True)

        async def attempt() -> object:
            try:
                return await sink.deliver("evt_1", "compensation.issued", BODY)
            finally:
                await sink.close()

        outcome = asyncio.run(attempt())
    assert isinstance(outcome, expected)
    if isinstance(outcome, Failed) and script[0] == 500:
        assert outcome.retry_after == 7.0


def test_event_type_filters() -> None:
    sink = WebhookSink(
        "s1",
        "https://crm.example/hooks",
        [new_secret()],
        event_types=["compensation.redeemed"],
    )
    assert sink.accepts("compensation.redeemed")
    assert not sink.accepts("compensation.issued")
    asyncio.run(sink.close())
