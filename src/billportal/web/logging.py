"""Logging set-up: an access log that never shows a token, key or session id."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
from typing import Any

# The id of the request being answered, set by web.operations.Observability.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_LOGIN_PATH = re.compile(r"/login/[^\s?\"]*")
_SECRET_QUERY = re.compile(r"([?&](?:token|key|api_key|session|password)=)[^&\s\"]*", re.IGNORECASE)
# Anything shaped like a signed token or an API key, wherever it appears (an exception's text, say).
_SECRET_SHAPES = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*|bp_live_[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    """``/login/eyJ...`` becomes ``/login/[redacted]``; secret-looking query values too."""
    return _SECRET_QUERY.sub(r"\1[redacted]", _LOGIN_PATH.sub("/login/[redacted]", text))


def redact_all(text: str) -> str:
    """:func:`redact`, and any token- or API-key-shaped string wherever it stands (for error texts)."""
    return _SECRET_SHAPES.sub("[redacted]", redact(text))


class RedactingFilter(logging.Filter):
    """Rewrites uvicorn's access-log arguments (and any message) before they are written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the request id; access lines carry their fields apart."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": request_id.get(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            entry.update({"client": client, "method": method, "path": path, "http_version": version, "status": status})
        else:
            entry["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__  # the type only: a message could quote input
        return json.dumps(entry, default=str)


def log_config(level: str = "INFO", access_log: bool = True, json_format: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping for uvicorn and billportal."""
    config = _text_config(level, access_log)
    if json_format:
        config["formatters"] = {"json": {"()": JsonFormatter}}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
    return config


def _text_config(level: str, access_log: bool) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter}},
        "formatters": {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(asctime)s %(client_addr)s "%(request_line)s" %(status_code)s',
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["redact"]},
            "access": {"class": "logging.StreamHandler", "formatter": "access", "filters": ["redact"]},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {
                "handlers": ["access"] if access_log else [],
                "level": level if access_log else "WARNING",
                "propagate": False,
            },
            "billportal": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }
