"""Where a profile's passphrase comes from: a file or a variable a job file (or
--passphrase-file) names, else $ARCHIVE_PROFILE_PASSPHRASE, else a prompt on a terminal.
Its own variable, not the signing key's: the two secrets guard different things."""

from __future__ import annotations

import os
from pathlib import Path

from archive.errors import ArchiveError
from archive.files import read_at_most
from archive.keys import passphrase_from_env_or_prompt

PROFILE_PASSPHRASE_ENV = "ARCHIVE_PROFILE_PASSPHRASE"
PASSPHRASE_FILE_LIMIT = 1 << 20
MISSING = (f"set {PROFILE_PASSPHRASE_ENV}, give --profile-passphrase-file FILE, "
           "or run from a terminal to be asked")


def profile_passphrase(file: str | Path | None = None, env: str | None = None,
                       confirm: bool = False) -> bytes | None:
    """The passphrase from `file`, else the variable `env` (which must then be set),
    else $ARCHIVE_PROFILE_PASSPHRASE, else a prompt; None when none is to be had."""
    if file:
        try:
            data = read_at_most(file, PASSPHRASE_FILE_LIMIT)
        except OSError as exc:
            raise ArchiveError(f"cannot read passphrase file {file}: {exc.strerror or exc}") from None
        except ValueError:
            raise ArchiveError(f"passphrase file {file} is larger than any passphrase") from None
        # A trailing newline is what editors and `echo` leave; it is not part of it.
        return data.rstrip(b"\r\n") or None
    if env:
        value = os.environ.get(env)
        if not value:
            raise ArchiveError(f"the passphrase variable {env} is not set")
        return value.encode("utf-8")
    return passphrase_from_env_or_prompt(confirm, env=PROFILE_PASSPHRASE_ENV, label="Profile")
