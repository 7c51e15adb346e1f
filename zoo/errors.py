"""Exceptions with one-line, actionable messages (the CLI prints ``str(err)`` and exits non-zero)."""


class ZooError(Exception):
    """Base class for every error ganzoo raises on bad input."""


class UnknownModelError(ZooError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConversionError(ZooError, ValueError):
    """The source file is not in a format we can read, or does not match the expected layout."""


class UnsafePickleError(ConversionError):
    """A pickle asked for a global outside the allow-list; nothing from it was executed."""


class ModelFormatError(ZooError, ValueError):
    """A converted folder is incomplete or inconsistent (missing/unexpected tensors, bad config)."""


class OfflineError(ZooError, ConnectionError):
    """The weights are not cached and cannot be downloaded."""
