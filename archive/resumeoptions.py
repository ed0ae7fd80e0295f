"""Where a capture goes and who signs it, as it was started, so that a resume finishes it
the same way: store, endpoint, retention, signing key, TSAs, operator. A resume given a
different value is refused unless told (`--override-saved`): a capture started for one
store and finished into another, or signed by another key, is a mistake more often than
a decision.
"""

from __future__ import annotations

import os

from archive.errors import ArchiveError
from archive.store.s3 import is_s3_address, parse_s3_address

# the options a capture's work folder remembers, with the flag that gives each
FLAGS = {
    "store": "--store", "endpoint_url": "--endpoint-url", "retain_days": "--retain-days",
    "lock_mode": "--lock-mode", "legal_hold": "--legal-hold", "signer": "signing key",
    "tsa": "--tsa", "tsa_timeout": "--tsa-timeout", "operator": "--operator",
}
OVERRIDE_FLAG = "--override-saved"


def absolute_address(address: str) -> str:
    """A store address in one form: a folder as an absolute path (a resume may run from
    another folder), an s3:// address as the store names it."""
    if is_s3_address(address):
        return parse_s3_address(address).address
    return os.path.abspath(address.removeprefix("file://"))


def merge(saved: dict, given: dict, override: bool) -> tuple[dict, list[str]]:
    """The options a resume runs with: each as saved, unless the command line gives one
    (None: not given). Returns them and what differs from the saved values; a difference
    is an error unless `override`. Options the work folder does not know (a capture
    started by an older version) are taken as given."""
    merged = dict(saved)
    differ = []
    for name, value in given.items():
        if value is None:
            continue
        if name in saved and saved[name] != value:
            differ.append(f"{FLAGS.get(name, name)} {_shown(value)} (it was started with {_shown(saved[name])})")
        merged[name] = value
    if differ and not override:
        raise ArchiveError("this capture was started with other options: " + "; ".join(differ)
                           + f". Leave them out to finish it as it was started, or add "
                           f"{OVERRIDE_FLAG} to use the new ones")
    return merged, differ


def _shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return " ".join(value) or "none"
    return str(value)
