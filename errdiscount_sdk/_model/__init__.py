"""The error vocabulary, free of I/O: enums, exceptions, classification, payloads,
Retry-After, alert URLs and the wire contract."""
