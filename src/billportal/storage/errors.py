"""Storage errors that the web layer knows how to answer."""

from __future__ import annotations


class StorageUnavailable(Exception):
    """The database could not answer in time; the web layer answers 503 and retries nothing."""


class Conflict(Exception):
    """A write would break a uniqueness rule (the message names the field, never a secret)."""


class NotFound(Exception):
    """The record does not exist, or is not visible to the caller."""
