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


# -- zh-CN spacing: one convention for every Chinese string -------------------------------
#
# The convention (docs/frontend.md, "Texts and languages"): no space between two Chinese
# characters, none next to full-width punctuation (，。：（）！…), and exactly one ASCII
# space between a Chinese character and Latin letters or digits, either way round
# ("需要启用 JavaScript。", "一张 US$5.00 的优惠券"). Value placeholders ({amount},
# {points}, {days}, {count}, {code}) render as Latin letters, digits and symbols, so they
# count as Latin; text placeholders ({summary}, {problem}) may begin or end with either,
# so only full-width punctuation or the string's edge may touch them.

HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"
FULL_WIDTH = r"[\u2026\u3000-\u303f\uff00-\uffef]"
LATIN = r"[!-~]"  # printable ASCII (letters, digits, $ . , and the like)
TEXT_PLACEHOLDERS = ("summary", "problem")
TEXT_MARK = "\ue000"  # a private-use stand-in for a text placeholder


def spacing_problems(text: str) -> list[str]:
    """What in ``text`` breaks the zh-CN spacing convention (empty: nothing)."""
    import re

    problems = []
    if re.search(r"\s", text.replace(" ", "")) or "  " in text or text != text.strip():
        problems.append("only single ASCII spaces, none at the ends")
    for match in re.finditer(" ", text):
        left, right = text[match.start() - 1], text[match.end()]
        if re.fullmatch(FULL_WIDTH, left) or re.fullmatch(FULL_WIDTH, right):
            problems.append(f"space next to full-width punctuation at {match.start()}")
        if re.fullmatch(HAN, left) and re.fullmatch(HAN, right):
            problems.append(f"space between Chinese characters at {match.start()}")
    if re.search(f"{HAN}{LATIN}|{LATIN}{HAN}", text):
        problems.append("no space between a Chinese character and Latin text or digits")
    for match in re.finditer(TEXT_MARK, text):
        for near in (text[match.start() - 1 : match.start()], text[match.end() : match.end() + 1]):
            if near and not re.fullmatch(FULL_WIDTH, near):
                problems.append("a text placeholder must touch only full-width punctuation")
    return problems


def _with_stand_ins(template: str) -> str:
    filled = []
    for literal, name, _, _ in string.Formatter().parse(template):
        filled.append(literal)
        if name:
            filled.append(TEXT_MARK if name in TEXT_PLACEHOLDERS else "0")
    return "".join(filled)


def test_every_zh_cn_string_follows_the_spacing_convention() -> None:
    broken = {
        key: spacing_problems(_with_stand_ins(text))
        for key, text in _raw("zh-CN").items()
        if spacing_problems(_with_stand_ins(text))
    }
    assert broken == {}


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("需要启用 JavaScript。", True),
        ("需要启用JavaScript。", False),
        ("一张 0 的优惠券", True),
        ("一张0的优惠券", False),
        ("抱歉， 操作没有成功", False),
        ("抱歉 操作", False),
        ("准备了" + TEXT_MARK + "。", False),
        ("补偿：" + TEXT_MARK + "。", True),
        (" 已领取", False),
        ("errdiscount 演示商店", True),
    ],
)
def test_the_spacing_check_tells_right_from_wrong(text: str, ok: bool) -> None:
    assert (spacing_problems(text) == []) is ok


def test_rendered_zh_cn_summaries_and_bodies_follow_the_convention_too() -> None:
    import datetime as dt

    from server_stub.frontend._alerts import alert_content

    class Record:
        jti = "j" * 22
        alert_id = "a" * 22
        token = "x.e30.y"
        expires_at = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
        message: dict[str, str] = {}
        suggestion: dict[str, str] = {}
        priority = False
        support_flag = False

        def __init__(self, kind: str, amount: int, unit: str) -> None:
            self.kind, self.amount, self.unit = kind, amount, unit

    samples = [
        ("coupon", 500, "USD_cent"),
        ("coupon", 1200, "CNY_cent"),
        ("coupon", 250, "CHF_cent"),
        ("points", 1000, "points"),
        ("membership_extension", 30, "days"),
        ("trial_extension", 7, "days"),
        ("service_credit", 990, "EUR_cent"),
        ("service_credit", 3, "days"),
        ("retry_chance", 2, "days"),
    ]
    for kind, amount, unit in samples:
        for redeemed in (False, True):
            content = alert_content(
                Record(kind, amount, unit),
                lang="zh-CN",
                redeemed=redeemed,
                now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
                redeem_url="https://r/v1",
            )
            for text in (content["body"], content["compensation"]["summary"]):
                # CLDR's no-break space inside "CHF 2.50" belongs to the amount's own form.
                glued = text.replace("\u00a0", "_")
                assert spacing_problems(glued) == [], (kind, unit, text)
