"""The storage layer of the redemption server: one interface, SQLite or PostgreSQL.

```python
from server_stub.store import open_store, RedemptionRequest, Redeemed

with open_store("sqlite:///errdiscount.db") as store:
    outcome = store.redeem(RedemptionRequest(jti=..., subject=..., ...))
```

See docs/redemption.md for the data model and the exactly-once argument.
"""

from ._base import Tx
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
from ._outbox_events import append_outbox, compensation_json, grant_json, wire_amount
from ._outbox_models import (
    ClaimedEvent,
    DeliveryResult,
    EventNotFound,
    NotFailed,
    OutboxEvent,
    OutboxStatus,
    Requeued,
    RequeueOutcome,
    SinkHealth,
    WebhookEndpoint,
)
from ._store import Clock, Store, open_store

__all__ = [
    "LATEST_VERSION",
    "AlreadyRedeemed",
    "AlreadyReversed",
    "Budget",
    "BudgetExhausted",
    "ClaimedEvent",
    "Clock",
    "CodeLoad",
    "CodePool",
    "Compensations",
    "DeliveryResult",
    "EventNotFound",
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
    "NotFailed",
    "OutboxEvent",
    "OutboxStatus",
    "PruneResult",
    "RedeemOutcome",
    "Redeemed",
    "Redemption",
    "RedemptionNotFound",
    "RedemptionRequest",
    "Replay",
    "RequeueOutcome",
    "Requeued",
    "ResponseRenderer",
    "ReverseOutcome",
    "Reversed",
    "RollupRow",
    "SinkHealth",
    "Store",
    "StoreError",
    "StoreInputError",
    "StoredEvent",
    "StoredResponse",
    "Tx",
    "UserCap",
    "UserCapReached",
    "UserMinute",
    "WebhookEndpoint",
    "WouldBlock",
    "append_outbox",
    "compensation_json",
    "entry_to_json",
    "grant_json",
    "ledger_csv",
    "ledger_json",
    "open_store",
    "rfc3339",
    "wire_amount",
]
