"""The reference redemption server of errdiscount (Starlette; SQLite or PostgreSQL).

`server_stub.store` is its storage layer: exactly-once redemption, budgets, coupon-code
inventory, per-subject caps, idempotency records and the append-only ledger.

Embedding: ``server_stub.create_app(Settings(...))`` gives the Starlette app; the
``errdiscount-server`` command (`server_stub._main.main`) runs it under uvicorn.
"""

from ._app import DEFAULT_ROUTE_GROUPS, RouteGroup, create_app
from ._settings import Settings

__all__ = ["DEFAULT_ROUTE_GROUPS", "RouteGroup", "Settings", "create_app"]
