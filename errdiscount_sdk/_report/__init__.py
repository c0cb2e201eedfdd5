"""Error collection on the app side: the event contract, PII redaction, the ErrorReporter."""
