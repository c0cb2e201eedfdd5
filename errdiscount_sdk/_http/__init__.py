"""The HTTP clients: façades, transport glue, retry orchestration, retry budget, hooks."""
