"""Log formats: ``text`` (the default, for people) and ``json`` (one object per line).

A JSON line has ``ts`` (RFC 3339 UTC), ``level``, ``logger``, ``message``, ``request_id``
when the line belongs to a request, and the exception as ``exc_info`` text when there is
one. Bearer capabilities never reach a log line: alert ids in paths (cut by
`server_stub.web._access_log.mask_path`), compact tokens and bearer credentials are masked
by `MaskSecrets`, installed on the one handler every logger writes to (uvicorn's access
log included). `log_config` is the ``logging.config.dictConfig`` document the command
line and uvicorn (in every ``--workers`` process) apply.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from ._access_log import mask_path
from ._request_id import current_request_id

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "MaskSecrets",
    "TextFormatter",
    "log_config",
    "mask_secrets",
]

LOG_FORMATS = ("text", "json")

_COMPACT_JWS = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"]+")


def mask_secrets(text: str) -> str:
    """Replace alert ids, compact tokens and bearer credentials by ``***``."""
    text = mask_path(text)
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


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message [request id]``."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = current_request_id()
        return f"{text} [request {request_id}]" if request_id else text


def log_config(log_format: str = "text") -> dict[str, Any]:
    """A ``dictConfig`` document: one masked stderr handler for the root and uvicorn loggers."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "errdiscount",
        "filters": ["mask_secrets"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask_secrets": {"()": f"{__name__}.MaskSecrets"}},
        "formatters": {"errdiscount": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"errdiscount": handler},
        "loggers": {
            "uvicorn": {"handlers": ["errdiscount"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["errdiscount"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["errdiscount"], "level": "INFO"},
    }
