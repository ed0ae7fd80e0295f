"""Exceptions that carry a one-line message for the user."""


class ArchiveError(Exception):
    """Bad input or an unusable environment: the CLI prints the message and exits 2."""


class NotFound(ArchiveError):
    """A capture, file or key that was asked for does not exist."""


class AlreadyExists(ArchiveError):
    """Refusing to overwrite something that is already stored."""


class TooLarge(ArchiveError):
    """An object holds more than its reader is willing to take in (a small record that is not)."""


class NotAStore(ArchiveError):
    """A store address that names no store (a mistyped folder, a file): never read as empty."""


class CannotCheck(Exception):
    """The input is not something we can read or verify at all (exit 2, one line)."""
