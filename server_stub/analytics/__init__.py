"""Report queries over rollups and the ledger."""
