"""The notify package's exceptions: one small tree, every message names the field
and the value that caused it."""

from __future__ import annotations


class NotifyError(Exception):
    """Base of every error raised by `collector.notify`."""


class RegistryError(NotifyError):
    """The school registry file is unreadable or invalid (field and value named)."""


class UnknownSchoolError(NotifyError):
    """A UAI code that the registry does not list."""

    def __init__(self, uai: str) -> None:
        super().__init__(f"school {uai!r} is not in the school registry")
        self.uai = uai
