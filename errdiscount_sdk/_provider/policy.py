"""`CompensationPolicy`: which errors are compensated, with what, for whom.

The seed's graded table is data (`DEFAULT_POLICY`), overridable from a TOML or
JSON file whose reference is docs/tokens.md ("Policy file").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from .._model.enums import ErrorCategory, Severity
from .._model.errors import PolicyError
from .._tokens.spec import SEGMENTS, Compensation, check_compensation
from .detection_config import DetectionSettings

if TYPE_CHECKING:
    from .._tokens.issuer import TokenIssuer

__all__ = ["DEFAULT_POLICY", "CompensationDecision", "CompensationPolicy"]

_MAX_POLICY_BYTES = 1024 * 1024

DEFAULT_POLICY: Mapping[str, Any] = MappingProxyType(
    {
        "version": 1,
        "token_ttl_days": 30,
        "compensate_transient": False,
        "compensable_categories": ["network", "protocol", "business", "data_format"],
        "severity": {
            # minor: a small coupon with no spending threshold, or one more trial day.
            "minor": [
                {"kind": "coupon", "amount": 2, "unit": "USD"},
                {"kind": "trial_extension", "amount": 1, "unit": "days"},
            ],
            # moderate: one month of membership upgrade, or points.
            "moderate": [
                {"kind": "membership_extension", "amount": 30, "unit": "days"},
                {"kind": "points", "amount": 500, "unit": "points"},
            ],
            # severe: service credit or extra service time, for every affected user.
            "severe": [
                {"kind": "service_credit", "amount": 10, "unit": "USD"},
                {"kind": "service_credit", "amount": 3, "unit": "days"},
            ],
        },
        "segments": {
            "high_value": {"multiplier": 2, "priority": True, "support_flag": True},
            "regular": {},
            "new": {
                "compensation": {
                    "minor": {"kind": "retry_chance", "amount": 7, "unit": "days"},
                    "moderate": {"kind": "retry_chance", "amount": 14, "unit": "days"},
                }
            },
        },
        "codes": {},
    }
)


@attrs.frozen
class CompensationDecision:
    """What the policy decided for one error and one user.

    Attributes:
        compensable: whether a token should be issued at all.
        reason: why (``"code_rule"``, ``"category"``, ``"transient"``, ``"graded"``).
        severity: the severity used (a code rule may override the caller's).
        compensation: what to put in the token, or None when not compensable.
        segment: the user segment the decision was made for.
        priority: handle this user's compensation first (high-value users).
        support_flag: open a support follow-up for this user.
        all_affected: severe failures compensate every affected user, not only
            the ones who saw the error.
        ttl: how long the token should stay valid.
    """

    compensable: bool
    reason: str
    severity: Severity
    compensation: Compensation | None
    segment: str | None
    priority: bool
    support_flag: bool
    all_affected: bool
    ttl: dt.timedelta


@attrs.frozen
class _SegmentRule:
    multiplier: float = 1.0
    priority: bool = False
    support_flag: bool = False
    compensation: Mapping[Severity, Compensation] = attrs.field(factory=dict)


@attrs.frozen
class _CodeRule:
    compensable: bool | None = None
    severity: Severity | None = None
    compensation: Compensation | None = None


def _closed(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path}: must be a table/object")
    unknown = set(value) - allowed
    if unknown:
        raise PolicyError(f"{path}.{sorted(unknown)[0]}: unknown field")
    return value


def _bool(value: Any, path: str) -> bool:
    if type(value) is not bool:
        raise PolicyError(f"{path}: must be true or false")
    return value


def _comp(value: Any, path: str) -> Compensation:
    try:
        return check_compensation(value, PolicyError, path)
    except PolicyError as exc:
        # check_compensation says "claim 'x' ..."; a policy speaks of fields.
        raise PolicyError(str(exc).replace("claim ", "field ", 1)) from None


def _severity(value: Any, path: str) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise PolicyError(f"{path}: must be one of {[s.value for s in Severity]}") from None


class CompensationPolicy:
    """The provider's compensation rules. Immutable once built.

    Build with `default`, `from_mapping`, `from_file`, `from_toml` or `from_json`.

    Raises:
        PolicyError: naming the first bad field (e.g. ``codes.PAY_001.compensation.amount``).
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        top = _closed(
            data,
            "policy",
            {
                "version",
                "token_ttl_days",
                "compensate_transient",
                "compensable_categories",
                "severity",
                "segments",
                "codes",
                "detection",
            },
        )
        if top.get("version", 1) != 1:
            raise PolicyError("version: only version 1 is supported")
        ttl_days = top.get("token_ttl_days", 30)
        if type(ttl_days) not in (int, float) or not 0 < ttl_days <= 366:
            raise PolicyError("token_ttl_days: must be a number of days in (0, 366]")
        self.token_ttl = dt.timedelta(days=ttl_days)
        self.compensate_transient = _bool(
            top.get("compensate_transient", False), "compensate_transient"
        )
        categories = top.get("compensable_categories", [c.value for c in ErrorCategory])
        if not isinstance(categories, list):
            raise PolicyError("compensable_categories: must be a list")
        try:
            self.compensable_categories = frozenset(ErrorCategory(c) for c in categories)
        except ValueError:
            raise PolicyError(
                f"compensable_categories: items must be among {[c.value for c in ErrorCategory]}"
            ) from None
        self.tiers = self._tiers(top.get("severity", DEFAULT_POLICY["severity"]))
        self.segments = self._segments(top.get("segments", DEFAULT_POLICY["segments"]))
        self.codes = self._codes(top.get("codes", {}))
        # The automatic-compensation rules (docs/detection.md); defaults when absent.
        self.detection = DetectionSettings.from_mapping(top.get("detection", {}))

    @staticmethod
    def _tiers(value: Any) -> Mapping[Severity, tuple[Compensation, ...]]:
        table = _closed(value, "severity", {s.value for s in Severity})
        tiers: dict[Severity, tuple[Compensation, ...]] = {}
        for severity in Severity:
            options = table.get(severity.value)
            path = f"severity.{severity.value}"
            if options is None:
                raise PolicyError(f"{path}: missing (every severity needs a compensation)")
            if isinstance(options, Mapping):
                options = [options]
            if not isinstance(options, list) or not options:
                raise PolicyError(f"{path}: must be a compensation or a non-empty list of them")
            tiers[severity] = tuple(_comp(o, f"{path}[{i}]") for i, o in enumerate(options))
        return MappingProxyType(tiers)

    @staticmethod
    def _segments(value: Any) -> Mapping[str, _SegmentRule]:
        table = _closed(value, "segments", set(SEGMENTS))
        rules: dict[str, _SegmentRule] = {}
        for name, raw in table.items():
            path = f"segments.{name}"
            rule = _closed(raw, path, {"multiplier", "priority", "support_flag", "compensation"})
            multiplier = rule.get("multiplier", 1)
            if type(multiplier) not in (int, float) or not 0 < multiplier <= 100:
                raise PolicyError(f"{path}.multiplier: must be a number in (0, 100]")
            overrides = _closed(
                rule.get("compensation", {}), f"{path}.compensation", {s.value for s in Severity}
            )
            rules[name] = _SegmentRule(
                multiplier=float(multiplier),
                priority=_bool(rule.get("priority", False), f"{path}.priority"),
                support_flag=_bool(rule.get("support_flag", False), f"{path}.support_flag"),
                compensation={
                    Severity(sev): _comp(c, f"{path}.compensation.{sev}")
                    for sev, c in overrides.items()
                },
            )
        return MappingProxyType(rules)

    @staticmethod
    def _codes(value: Any) -> Mapping[str, _CodeRule]:
        if not isinstance(value, Mapping):
            raise PolicyError("codes: must be a table/object")
        table = value
        if len(table) > 10_000:
            raise PolicyError("codes: at most 10000 entries")
        rules: dict[str, _CodeRule] = {}
        for code, raw in table.items():
            path = f"codes.{code}"
            rule = _closed(raw, path, {"compensable", "severity", "compensation"})
            rules[code] = _CodeRule(
                compensable=None
                if "compensable" not in rule
                else _bool(rule["compensable"], f"{path}.compensable"),
                severity=None
                if "severity" not in rule
                else _severity(rule["severity"], f"{path}.severity"),
                compensation=None
                if "compensation" not in rule
                else _comp(rule["compensation"], f"{path}.compensation"),
            )
        return MappingProxyType(rules)

    @classmethod
    def default(cls) -> CompensationPolicy:
        """The seed's graded table (`DEFAULT_POLICY`)."""
        return cls(DEFAULT_POLICY)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CompensationPolicy:
        return cls(data)

    @classmethod
    def from_toml(cls, text: str) -> CompensationPolicy:
        try:
            return cls(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy: not valid TOML ({exc})") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> CompensationPolicy:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PolicyError(f"policy: not valid JSON ({exc})") from None
        return cls(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CompensationPolicy:
        """Load a ``.toml`` or ``.json`` policy file (at most 1 MiB)."""
        file = Path(path)
        if file.suffix not in (".toml", ".json"):
            raise PolicyError(f"{file.name}: policy files must end in .toml or .json")
        try:
            with file.open("rb") as handle:
                data = handle.read(_MAX_POLICY_BYTES + 1)
        except OSError as exc:
            raise PolicyError(f"{file.name}: cannot read ({exc.strerror})") from None
        if len(data) > _MAX_POLICY_BYTES:
            raise PolicyError(f"{file.name}: larger than {_MAX_POLICY_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(f"{file.name}: not UTF-8") from None
        return cls.from_toml(text) if file.suffix == ".toml" else cls.from_json(text)

    def is_compensable(
        self,
        error_code: str | None,
        *,
        category: ErrorCategory | str,
        severity: Severity | str,
        transient: bool = False,
    ) -> bool:
        return self.decide(
            error_code, category=category, severity=severity, transient=transient
        ).compensable

    def decide(
        self,
        error_code: str | None,
        *,
        category: ErrorCategory | str,
        severity: Severity | str,
        transient: bool = False,
        segment: str | None = None,
        prefer: str | None = None,
    ) -> CompensationDecision:
        """Decide whether and how to compensate one error for one user.

        Order: a per-code rule's ``compensable`` wins; otherwise the category must be
        compensable, and a transient error is compensated only when severe (an outage)
        or when ``compensate_transient`` is set. The compensation is the code rule's,
        else the severity tier's option of kind ``prefer`` (else its first option); the
        user's segment may replace it and multiplies its amount.

        Raises:
            PolicyError: unknown category, severity or segment.
        """
        try:
            category = ErrorCategory(category)
        except ValueError:
            raise PolicyError(f"category: unknown value {category!r}") from None
        severity = _severity(severity, "severity")
        if segment is not None and segment not in SEGMENTS:
            raise PolicyError(f"segment: must be one of {sorted(SEGMENTS)}")
        rule = self.codes.get(error_code or "") or _CodeRule()
        severity = rule.severity or severity
        if rule.compensable is not None:
            compensable, reason = rule.compensable, "code_rule"
        elif category not in self.compensable_categories:
            compensable, reason = False, "category"
        elif transient and severity is not Severity.SEVERE and not self.compensate_transient:
            compensable, reason = False, "transient"
        else:
            compensable, reason = True, "graded"
        return self._graded(severity, segment, prefer, compensable, reason, rule.compensation)

    def decide_graded(
        self, severity: Severity | str, *, segment: str | None = None, prefer: str | None = None
    ) -> CompensationDecision:
        """The grade x segment decision alone, for automatic compensation.

        Detection (docs/detection.md) has already decided that the user is owed a
        compensation of this grade; the category, transient and per-code rules, which
        judge one error, do not apply. Always compensable (reason ``"graded"``).

        Raises:
            PolicyError: unknown severity or segment.
        """
        severity = _severity(severity, "severity")
        if segment is not None and segment not in SEGMENTS:
            raise PolicyError(f"segment: must be one of {sorted(SEGMENTS)}")
        return self._graded(severity, segment, prefer, True, "graded", None)

    def _graded(
        self,
        severity: Severity,
        segment: str | None,
        prefer: str | None,
        compensable: bool,
        reason: str,
        code_compensation: Compensation | None,
    ) -> CompensationDecision:
        seg_rule = self.segments.get(segment or "regular") or _SegmentRule()
        compensation: Compensation | None = None
        if compensable:
            options = self.tiers[severity]
            chosen = next((o for o in options if o.kind == prefer), options[0])
            chosen = code_compensation or seg_rule.compensation.get(severity, chosen)
            compensation = _scaled(chosen, seg_rule.multiplier)
        return CompensationDecision(
            compensable=compensable,
            reason=reason,
            severity=severity,
            compensation=compensation,
            segment=segment,
            priority=compensable and seg_rule.priority,
            support_flag=compensable and seg_rule.support_flag,
            all_affected=compensable and severity is Severity.SEVERE,
            ttl=self.token_ttl,
        )

    def error_payload(
        self,
        error_code: str,
        *,
        message: str,
        category: ErrorCategory | str,
        severity: Severity | str,
        subject: str | None = None,
        issuer: TokenIssuer | None = None,
        transient: bool = False,
        segment: str | None = None,
        suggestion: str | None = None,
        alert_url: str | None = None,
        incident: str | None = None,
    ) -> dict[str, Any]:
        """The structured error body a provider returns, with a token when compensable.

        A token is minted only when the decision is compensable and both ``issuer``
        and ``subject`` (the user's id) are given; otherwise ``discount_token`` is null.

        Returns:
            ``{"error_code", "message", "suggestion", "discount_token", "alert_url"}``.
        """
        decision = self.decide(
            error_code, category=category, severity=severity, transient=transient, segment=segment
        )
        token: str | None = None
        if decision.compensable and issuer is not None and subject is not None:
            assert decision.compensation is not None
            token = issuer.issue(
                subject=subject,
                error_code=error_code,
                category=category,
                severity=decision.severity,
                compensation=decision.compensation,
                ttl=decision.ttl,
                segment=segment,
                incident=incident,
                alert=alert_url,
            )
        return {
            "error_code": error_code,
            "message": message,
            "suggestion": suggestion,
            "discount_token": token,
            "alert_url": alert_url,
        }

    def __repr__(self) -> str:
        return f"CompensationPolicy(codes={len(self.codes)}, segments={sorted(self.segments)})"


def _scaled(compensation: Compensation, multiplier: float) -> Compensation:
    if multiplier == 1:
        return compensation
    amount = compensation.amount * multiplier
    value: int | float = int(amount) if float(amount).is_integer() else round(amount, 2)
    return Compensation(compensation.kind, value, compensation.unit)
