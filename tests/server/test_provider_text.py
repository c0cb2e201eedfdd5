"""The provider's message/suggestion: request shapes and the text picked per language."""

from __future__ import annotations

import pytest

from server_stub.domain._provider_text import MAX_TEXT, pick_text, provider_texts
from server_stub.web._problems import HttpProblem


def test_plain_strings_take_the_lang_member_or_undetermined() -> None:
    assert provider_texts({"message": "余额不足", "lang": "zh-CN"}) == ({"zh-CN": "余额不足"}, {})
    assert provider_texts({"suggestion": "Top up"}) == ({}, {"und": "Top up"})
    assert provider_texts({}) == ({}, {})
    assert provider_texts({"message": None, "suggestion": None, "lang": None}) == ({}, {})


def test_objects_keep_their_languages_in_order() -> None:
    message = {"zh-CN": "余额不足", "en": "Insufficient balance", "zh-Hant-TW": "餘額不足"}
    got, _ = provider_texts({"message": message, "suggestion": "ok", "lang": "en"})
    assert list(got.items()) == list(message.items())


def test_the_longest_allowed_text_passes_and_one_more_character_does_not() -> None:
    assert provider_texts({"message": "字" * MAX_TEXT})[0] == {"und": "字" * MAX_TEXT}
    with pytest.raises(HttpProblem) as caught:
        provider_texts({"message": "字" * (MAX_TEXT + 1)})
    assert (caught.value.status, caught.value.code) == (422, "INVALID_BODY")


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\u2028", "\ufeff", "\ue000"])
def test_control_format_private_and_separator_characters_are_refused(char: str) -> None:
    with pytest.raises(HttpProblem):
        provider_texts({"message": f"a{char}b"})


TEXTS = {"en-US": "Card declined", "zh": "银行卡被拒", "und": "Declined (und)"}


@pytest.mark.parametrize(
    ("texts", "lang", "expected"),
    [
        (TEXTS, "en", "Card declined"),  # same primary language
        (TEXTS, "zh-CN", "银行卡被拒"),
        ({"ZH-cn": "精确", "zh": "宽泛"}, "zh-CN", "精确"),  # exact tag, any case
        (TEXTS, "fr", "Declined (und)"),  # undetermined before other languages
        ({"ja": "残高不足", "en-GB": "Insufficient"}, "zh-CN", "Insufficient"),  # then English
        ({"ja": "残高不足", "de": "Zu wenig"}, "zh-CN", "残高不足"),  # then the first
        ({}, "en", None),
    ],
)
def test_pick_text_prefers_the_readers_language(
    texts: dict[str, str], lang: str, expected: str | None
) -> None:
    assert pick_text(texts, lang) == expected
