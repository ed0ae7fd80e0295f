"""The one tree of exceptions that reach a user, as requests keeps its own.

Every error a user can meet derives from ArchiveError: the CLI prints its message on one
line and exits 2 ("does not verify" is a verdict with exit 1, never an exception). The
family is defined where each belongs (TimestampError in seal/timestamp.py, DecodeError in
reader/decode.py, ...); the general ones are here (CannotCheck: raised by the reader,
caught by verify and the commands). Private control-flow signals (a
download to stop, a reader to fall back) are not errors for users: their names start
with an underscore, or tests/test_errors.py lists them with the reason.
"""


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


class CannotCheck(ArchiveError):
    """The input is not something we can read or verify at all (exit 2, one line)."""
