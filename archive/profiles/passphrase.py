"""Where a profile's passphrase comes from: a file or a variable a job file (or
--passphrase-file) names, else $ARCHIVE_PROFILE_PASSPHRASE, else a prompt on a terminal.
Its own variable, not the signing key's: the two secrets guard different things."""

from __future__ import annotations

from pathlib import Path

from archive.keys import PassphraseSource

PROFILE_PASSPHRASE_ENV = "ARCHIVE_PROFILE_PASSPHRASE"
MISSING = (f"set {PROFILE_PASSPHRASE_ENV}, give --profile-passphrase-file FILE, "
           "or run from a terminal to be asked")


def profile_passphrase(file: str | Path | None = None, env: str | None = None,
                       confirm: bool = False) -> bytes | None:
    """The passphrase from `file`, else the variable `env` (which must then be set),
    else $ARCHIVE_PROFILE_PASSPHRASE, else a prompt; None when none is to be had."""
    return PassphraseSource(env=None if file else env, file=Path(file) if file else None,
                            missing=MISSING, default_env=PROFILE_PASSPHRASE_ENV,
                            label="Profile", confirm=confirm).read()
