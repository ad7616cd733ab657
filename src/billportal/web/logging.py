"""Logging set-up: an access log that never shows a token, key or session id."""

from __future__ import annotations

import asyncio
import contextvars
import http
import json
import logging
import queue
import re
import sys
import threading
import time
from typing import Any, TextIO

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


_PHRASES = {status.value: f"{status.value} {status.phrase}" for status in http.HTTPStatus}


class AccessLog(logging.Handler):
    """uvicorn's access lines, each built once and written by a thread of its own, many to a write.

    The event loop only formats a line (redacting the path when it could hold a secret) and keeps it;
    what the loop answered in ``GATHER_SECONDS`` from the first of them goes to the writer together,
    and the writer writes it with one flush. A busy server pays neither a write and a flush nor a
    thread's wake-up per request, nor per turn of the loop (waking the writer, and handing the GIL
    back and forth, cost the requests more than the write: 57 µs of a 312 µs sign-in when it woke
    every turn, 14 µs now); a quiet one has its line written within those milliseconds. The last
    lines are written when logging shuts down (at exit).
    """

    GATHER_SECONDS = 0.01

    def __init__(self, stream: TextIO | None = None, json_format: bool = False) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.json = JsonFormatter() if json_format else None
        self.pending: list[str] = []  # this turn's lines, on the event loop's thread
        self.lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.second = -1
        self.stamp = ""
        self.writer = threading.Thread(target=self._write, name="billportal-access-log", daemon=True)
        self.writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pending.append(self.line(record))
            if len(self.pending) == 1:
                try:
                    asyncio.get_running_loop().call_later(self.GATHER_SECONDS, self.hand_over)
                except RuntimeError:  # not on an event loop: no turn to wait for
                    self.hand_over()
        except Exception:  # noqa: BLE001 - logging must never break a request
            self.handleError(record)

    def hand_over(self) -> None:
        """Give the writer the lines kept so far, as one piece of text."""
        batch, self.pending = self.pending, []
        if batch:
            self.lines.put("".join(line + "\n" for line in batch))

    def line(self, record: logging.LogRecord) -> str:
        """The text of one access line (or a JSON object, in JSON mode)."""
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):
            RedactingFilter().filter(record)
            return self.json.format(record) if self.json else redact_all(record.getMessage())
        client, method, path, version, status = args
        if "/login/" in str(path) or "=" in str(path):
            path = redact(str(path))
            record.args = (client, method, path, version, status)
        if self.json:
            return self.json.format(record)
        second = int(record.created)
        if second != self.second:
            self.second, self.stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        status_text = _PHRASES.get(status, str(status)) if isinstance(status, int) else str(status)
        return f'{self.stamp},{int(record.msecs):03d} {client} "{method} {path} HTTP/{version}" {status_text}'

    def _write(self) -> None:
        while True:
            first = self.lines.get()
            batch = [first]
            while True:
                try:
                    batch.append(self.lines.get_nowait())
                except queue.Empty:
                    break
            done = None in batch
            text = "".join(piece for piece in batch if piece is not None)
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # the stream is gone (the process is ending): nothing else can be told
            if done:
                return

    def close(self) -> None:
        self.hand_over()
        if self.writer.is_alive():
            self.lines.put(None)
            self.writer.join(timeout=5)
        super().close()


def log_config(level: str = "INFO", access_log: bool = True, json_format: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping for uvicorn and billportal."""
    config = _text_config(level, access_log)
    if json_format:
        config["formatters"] = {"json": {"()": JsonFormatter}}
        config["handlers"]["default"]["formatter"] = "json"
        config["handlers"]["access"]["json_format"] = True
    return config


def _text_config(level: str, access_log: bool) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter}},
        "formatters": {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["redact"]},
            "access": {"()": AccessLog},
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
