"""The compensation-report half of `Store`: funnel rows, failures, vouchers, outcome times.

A mixin so the report reads keep to their own module (like `OutboxMixin`); `Store`
inherits it. Every method is one read transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from . import _funnel
from ._base import Dialect, Tx, check_text, to_us
from ._funnel import FailureRow, FunnelRow, VoucherRow
from ._outcomes import MAX_OUTCOME_NAME

T = TypeVar("T")


class FunnelMixin:
    _dialect: Dialect

    def _report_read(self, work: Callable[[Tx], T]) -> T:
        return self._dialect.run(work, write=False)

    def funnel_rows(self, since: datetime, until: datetime) -> list[FunnelRow]:
        """The vouchers issued in [since, until), counted per UTC day and dimensions."""
        low, high = to_us(since), to_us(until)
        return self._report_read(lambda tx: _funnel.funnel_rows(tx, since=low, until=high))

    def failure_rows(self, since: datetime, until: datetime) -> list[FailureRow]:
        """Known users' failed calls in [since, until): first time per (category, status)."""
        low, high = to_us(since), to_us(until)
        return self._report_read(lambda tx: _funnel.failure_rows(tx, since=low, until=high))

    def voucher_rows(self, since: datetime, until: datetime) -> list[VoucherRow]:
        """Vouchers issued in [since, until) with their redemptions."""
        low, high = to_us(since), to_us(until)
        return self._report_read(lambda tx: _funnel.voucher_rows(tx, since=low, until=high))

    def outcome_times(
        self, name: str, since: datetime, until: datetime
    ) -> list[tuple[str, datetime]]:
        """(user, time) of the outcome events named ``name`` in [since, until)."""
        check_text("name", name, MAX_OUTCOME_NAME)
        low, high = to_us(since), to_us(until)
        return self._report_read(
            lambda tx: _funnel.outcome_times(tx, name=name, since=low, until=high)
        )
