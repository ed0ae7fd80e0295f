"""What a job needs from its machine, checked before any capture: the signing key and
its passphrase, and a reachable store."""

from __future__ import annotations

import os
from pathlib import Path

from archive.errors import ArchiveError
from archive.files import read_at_most
from archive.jobs.spec import JobFileError, JobPart, JobSpec, Problem
from archive.keys import is_encrypted_pem, load_private_key, read_key_file
from archive.profiles.vault import open_named
from archive.seal.sign import Signer
from archive.store.address import StoreOptions, open_store
from archive.store.s3 import Retention
from archive.store.local import LocalStore

PASSPHRASE_FILE_LIMIT = 1 << 20


def passphrase(spec: JobSpec) -> bytes | None:
    """The key passphrase from the variable or file the job names (None if it names none)."""
    signing = spec.signing
    if signing.passphrase_env:
        value = os.environ.get(signing.passphrase_env)
        if not value:
            raise ArchiveError(f"the passphrase variable {signing.passphrase_env} is not set")
        return value.encode("utf-8")
    if signing.passphrase_file:
        try:
            data = read_at_most(signing.passphrase_file, PASSPHRASE_FILE_LIMIT)
        except OSError as exc:
            raise ArchiveError(f"cannot read passphrase file {signing.passphrase_file}: "
                               f"{exc.strerror}") from None
        except ValueError:
            raise ArchiveError(f"passphrase file {signing.passphrase_file} is larger than any "
                               "passphrase") from None
        # A trailing newline is what editors and `echo` leave; it is not part of it.
        return data.rstrip(b"\r\n") or None
    return None


def load_signer(spec: JobSpec) -> Signer | None:
    """The job's signer (None for an unsigned job); an ArchiveError says what is wrong."""
    if spec.signing.unsigned:
        return None
    key_path = spec.signing.key
    data = read_key_file(key_path)
    secret = passphrase(spec) if is_encrypted_pem(data) else None
    if is_encrypted_pem(data) and secret is None:
        raise ArchiveError(f"{key_path} is encrypted: name its passphrase with "
                           "passphrase_env or passphrase_file in [signing]")
    return Signer(load_private_key(key_path, secret))


def store_options(spec: JobSpec) -> StoreOptions:
    retention = spec.retention
    return StoreOptions(endpoint_url=spec.endpoint_url, retention=Retention(
        retention.retain_days, retention.lock_mode, retention.legal_hold))


def open_job_store(spec: JobSpec):
    """The job's store, checked to be usable: reachable, for a folder writable, for a
    bucket able to keep the job's retention."""
    store = open_store(spec.store, store_options(spec))
    if isinstance(store, LocalStore):
        _check_folder(Path(store.root))
    else:
        # A listing proves the address, the credentials and the bucket in one request.
        next(iter(store.list_objects(f"jobs/{spec.name}/")), None)
    return store


def _check_folder(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise ArchiveError(f"store {root} is a file, not a folder")
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ArchiveError(f"store {root} cannot be written ({existing} is not a writable folder)")


def signing_problems(spec: JobSpec | JobPart) -> tuple[Signer | None, list[Problem]]:
    """The job's signer, or what is wrong with its key or passphrase (with its line)."""
    try:
        return load_signer(spec), []
    except ArchiveError as exc:
        key = _signing_key_for(str(exc), spec)
        return None, [Problem(spec.line_of(key) or spec.line_of("signing"), f"signing key: {exc}")]


def store_problems(spec: JobSpec | JobPart) -> tuple[object, list[Problem]]:
    """The job's store, or why it cannot be used (with its line)."""
    try:
        return open_job_store(spec), []
    except ArchiveError as exc:
        return None, [Problem(spec.line_of("store"), f"store unreachable: {exc}")]


def profile_problems(spec: JobSpec) -> list[Problem]:
    """Why the job's browser profile cannot be opened (its passphrase, its file), if it
    cannot: said by `jobs check`, not first by a run at night. (A profile whose session
    has expired opens: a run fails on it, and notifies.)"""
    crawl = spec.crawl
    if crawl.profile is None:
        return []
    try:
        open_named(crawl.profile, crawl.profile_passphrase_file, crawl.profile_passphrase_env)
        return []
    except ArchiveError as exc:
        key = ("crawl.profile_passphrase_env" if crawl.profile_passphrase_env and "variable" in str(exc)
               else "crawl.profile_passphrase_file" if crawl.profile_passphrase_file and "passphrase file" in str(exc)
               else "crawl.profile")
        return [Problem(spec.line_of(key) or spec.line_of("crawl"), f"profile: {exc}")]


def part_problems(part: JobPart) -> list[Problem]:
    """What preflight finds in the valid part of a job file that has other problems."""
    problems = []
    if not part.signing.unsigned and part.signing.key is not None:
        problems += signing_problems(part)[1]
    if part.store is not None:
        problems += store_problems(part)[1]
    return problems


def preflight(spec: JobSpec) -> tuple[Signer | None, object]:
    """(signer, store) for a run, or JobFileError with every problem and its line."""
    signer, problems = signing_problems(spec)
    store, more = store_problems(spec)
    problems += more + profile_problems(spec)
    if problems:
        raise JobFileError(spec.path, problems)
    return signer, store


def _signing_key_for(message: str, spec: JobSpec) -> str:
    if "passphrase variable" in message or "passphrase file" in message:
        return "signing.passphrase_env" if spec.signing.passphrase_env else "signing.passphrase_file"
    return "signing.key"
