"""Modules imported on first use, so that a process pays only for what it runs."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _Lazy(ModuleType):
    """Stands for a module until one of its attributes is read, then hands out the real module's."""

    def __getattr__(self, attribute: str) -> Any:
        # importlib's own locks make the first import safe from several threads at once (unlike
        # importlib.util.LazyLoader before Python 3.12, which gave a second thread a half-made module).
        module = importlib.import_module(self.__name__)
        return getattr(module, attribute)


def lazy_import(name: str) -> ModuleType:
    """A stand-in for the module ``name``, imported when one of its attributes is first read."""
    return _Lazy(name)
