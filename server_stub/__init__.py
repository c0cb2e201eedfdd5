"""The reference redemption server of errdiscount (Starlette; SQLite or PostgreSQL).

`server_stub.store` is its storage layer: exactly-once redemption, budgets, coupon-code
inventory, per-subject caps, idempotency records and the append-only ledger.
"""
