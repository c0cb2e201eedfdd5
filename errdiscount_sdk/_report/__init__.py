"""Error collection: the event model, redaction and the ErrorReporter."""
