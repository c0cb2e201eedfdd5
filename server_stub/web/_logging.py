"""Log formats: ``text`` (the default, for people) and ``json`` (one object per line).

A JSON line has ``ts`` (RFC 3339 UTC), ``level``, ``logger``, ``message``, ``request_id``
when the line belongs to a request, and the exception as ``exc_info`` text when there is
one. Bearer capabilities never reach a log line: alert ids in paths and anything that
looks like a compact token are masked by `MaskSecrets`, installed on every handler
(uvicorn's access log included).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from ._request_id import current_request_id

__all__ = ["LOG_FORMATS", "JsonFormatter", "MaskSecrets", "configure_logging", "mask_secrets"]

LOG_FORMATS = ("text", "json")
LogFormat = Literal["text", "json"]

_ALERT_PATH = re.compile(r"(/v1/alerts/)[^/?\s\"]+")
_COMPACT_JWS = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"]+")


def mask_secrets(text: str) -> str:
    """Replace alert ids, compact tokens and bearer credentials by ``***``."""
    text = _ALERT_PATH.sub(r"\1***", text)
    text = _COMPACT_JWS.sub("***", text)
    return _BEARER.sub(r"\1***", text)


class MaskSecrets(logging.Filter):
    """Masks bearer capabilities in the formatted message (and its arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                return True
            record.msg, record.args = mask_secrets(message), None
        elif isinstance(record.msg, str):
            record.msg = mask_secrets(record.msg)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; see the module docstring for the members."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exc_info"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = current_request_id()
        return f"{text} [request {request_id}]" if request_id else text


def configure_logging(log_format: LogFormat = "text", level: int = logging.INFO) -> None:
    """Route the root, server and uvicorn loggers through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskSecrets())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def uvicorn_log_config() -> dict[str, Any]:
    """A uvicorn ``log_config`` that leaves logging to `configure_logging` (no own handlers)."""
    return {"version": 1, "disable_existing_loggers": False}
