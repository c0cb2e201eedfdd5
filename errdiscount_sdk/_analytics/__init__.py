"""Reports of the server's analytics API, drawn: SVG charts, terminal tables, CSV (no I/O).

Public through `errdiscount_sdk.reports`; the CLI (``errdiscount report``) and the
server's ``/dashboard`` share these renderers.
"""
