"""Logging set-up: an access log that never shows a token, key or session id."""

from __future__ import annotations

import logging
import re
from typing import Any

_LOGIN_PATH = re.compile(r"/login/[^\s?\"]*")
_SECRET_QUERY = re.compile(r"([?&](?:token|key|api_key|session|password)=)[^&\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``/login/eyJ...`` becomes ``/login/[redacted]``; secret-looking query values too."""
    return _SECRET_QUERY.sub(r"\1[redacted]", _LOGIN_PATH.sub("/login/[redacted]", text))


class RedactingFilter(logging.Filter):
    """Rewrites uvicorn's access-log arguments (and any message) before they are written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def log_config(level: str = "INFO", access_log: bool = True) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping for uvicorn and billportal."""
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
