import json
import string
from pathlib import Path

import pytest

from errdiscount_sdk import ConfigurationError
from server_stub.frontend._i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    Catalogues,
    catalogues,
    choose_language,
    load_catalogues,
)

LOCALES = Path(__file__).parents[2] / "server_stub" / "frontend" / "locales"


def _raw(lang: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def test_every_language_has_the_same_keys_and_placeholders() -> None:
    reference = _raw(DEFAULT_LANGUAGE)
    for lang in LANGUAGES:
        table = _raw(lang)
        assert set(table) == set(reference), lang
        for key, text in table.items():
            names = {n for _, n, _, _ in string.Formatter().parse(text) if n}
            ref = {n for _, n, _, _ in string.Formatter().parse(reference[key]) if n}
            assert names == ref, (lang, key)


def test_chinese_catalogue_is_actually_translated() -> None:
    zh = _raw("zh-CN")
    en = _raw("en")
    same = [key for key in zh if zh[key] == en[key]]
    assert same == []
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in text) for text in zh.values())


def test_widget_section_has_the_contract_keys() -> None:
    contract = {
        "redeem",
        "dismiss",
        "close",
        "redeeming",
        "success",
        "already_redeemed",
        "expired",
        "budget_exhausted",
        "user_cap_reached",
        "failed",
        "coupon_code",
        "points",
        "days",
    }
    for lang in LANGUAGES:
        assert contract <= set(catalogues().section(lang, "widget"))


def test_text_fills_placeholders() -> None:
    assert catalogues().text("en", "summary.points", amount=100) == "100 points"
    assert catalogues().text("zh-CN", "summary.points", amount=100) == "100 积分"


def test_missing_key_in_one_language_is_refused() -> None:
    en = {"a": "A", "b": "B"}
    with pytest.raises(ConfigurationError, match="differs in keys: b"):
        Catalogues({"en": en, "zh-CN": {"a": "甲"}})


def test_other_placeholders_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="placeholders"):
        Catalogues({"en": {"a": "{n} points"}, "zh-CN": {"a": "{m} 积分"}})


def test_missing_language_and_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no catalogue for zh-CN"):
        Catalogues({"en": {"a": "A"}})
    (tmp_path / "en.json").write_text('{"a": "A"}')
    (tmp_path / "zh-CN.json").write_text("[1]")
    with pytest.raises(ConfigurationError, match="JSON object"):
        load_catalogues(tmp_path)
    (tmp_path / "zh-CN.json").write_text("{nope")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_catalogues(tmp_path)
    (tmp_path / "zh-CN.json").unlink()
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_catalogues(tmp_path)


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        (None, None, "en"),
        ("zh-CN", "en", "zh-CN"),
        ("zh-cn", None, "zh-CN"),
        ("zh", None, "zh-CN"),
        ("en", "zh-CN", "en"),
        ("fr", "zh-CN,en;q=0.5", "zh-CN"),
        (None, "zh-TW,zh;q=0.9", "zh-CN"),
        (None, "fr-FR, de;q=0.9, en;q=0.1", "en"),
        (None, "en;q=0.2, zh-CN;q=0.8", "zh-CN"),
        (None, "zh-CN;q=0, en", "en"),
        (None, "de, fr", "en"),
        (None, "zh-CN;q=abc", "en"),
        (None, "zh-CN;q=5", "en"),
        ("<script>", "zh-CN", "zh-CN"),
        (None, "en," * 400 + "zh-CN", "en"),
        (None, "*", "en"),
    ],
)
def test_choose_language(query: str | None, accept: str | None, expected: str) -> None:
    assert choose_language(query, accept) == expected
