"""Domain logic: trust, vouchers, rendering, provider texts, group commit.

Plain arguments in, typed outcomes out."""
