"""The storage layer of the redemption server: one interface, SQLite or PostgreSQL.

```python
from server_stub.store import open_store, RedemptionRequest, Redeemed

with open_store("sqlite:///errdiscount.db") as store:
    outcome = store.redeem(RedemptionRequest(jti=..., subject=..., ...))
```

See docs/redemption.md for the data model and the exactly-once argument.
"""

from ._errors import IdempotencyKeyLost, StoreError, StoreInputError, WouldBlock
from ._event_models import (
    EventRecord,
    IngestResult,
    PruneResult,
    RollupRow,
    StoredEvent,
    UserMinute,
)
from ._export import entry_to_json, ledger_csv, ledger_json, rfc3339
from ._migrations import LATEST_VERSION
from ._models import (
    AlreadyRedeemed,
    AlreadyReversed,
    Budget,
    BudgetExhausted,
    CodeLoad,
    CodePool,
    Compensations,
    Grant,
    IdempotencyOutcome,
    InFlight,
    InventoryExhausted,
    IssuedToken,
    KeyedOutcome,
    KeyedRedemption,
    LedgerEntry,
    LedgerEvent,
    LedgerPage,
    Mismatch,
    New,
    Redeemed,
    RedeemOutcome,
    Redemption,
    RedemptionNotFound,
    RedemptionRequest,
    Replay,
    ResponseRenderer,
    Reversed,
    ReverseOutcome,
    StoredResponse,
    UserCap,
    UserCapReached,
)
from ._store import Clock, Store, open_store

__all__ = [
    "LATEST_VERSION",
    "AlreadyRedeemed",
    "AlreadyReversed",
    "Budget",
    "BudgetExhausted",
    "Clock",
    "CodeLoad",
    "CodePool",
    "Compensations",
    "EventRecord",
    "Grant",
    "IdempotencyKeyLost",
    "IdempotencyOutcome",
    "InFlight",
    "IngestResult",
    "InventoryExhausted",
    "IssuedToken",
    "KeyedOutcome",
    "KeyedRedemption",
    "LedgerEntry",
    "LedgerEvent",
    "LedgerPage",
    "Mismatch",
    "New",
    "PruneResult",
    "RedeemOutcome",
    "Redeemed",
    "Redemption",
    "RedemptionNotFound",
    "RedemptionRequest",
    "Replay",
    "ResponseRenderer",
    "ReverseOutcome",
    "Reversed",
    "RollupRow",
    "Store",
    "StoreError",
    "StoreInputError",
    "StoredEvent",
    "StoredResponse",
    "UserCap",
    "UserCapReached",
    "UserMinute",
    "WouldBlock",
    "entry_to_json",
    "ledger_csv",
    "ledger_json",
    "open_store",
    "rfc3339",
]
