"""Background workers: detector loop, outbox dispatcher, retention."""
