"""What a capture says about itself: its datapackage.json, datapackage-digest.json and
evidence/capture.json, read once for every reader (ls, show, resume, recovery, dedup, diff,
the catalog). Claims, not facts: only `archive verify` checks them."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field

from archive.values import parse_json
from archive.wacz.bounds import JSON_LIMIT
from archive.wacz.names import CAPTURE, DATAPACKAGE, DIGEST
from archive.wacz.zipreader import read_small


@dataclass(frozen=True)
class Claims:
    """The three self-describing members as JSON objects ({} when absent or not an object)."""

    datapackage: dict = field(default_factory=dict)
    digest: dict = field(default_factory=dict)
    evidence: dict = field(default_factory=dict)

    @property
    def capture_id(self):
        return self.evidence.get("captureId")

    @property
    def created(self):
        return self.datapackage.get("created")

    @property
    def seeds(self):
        return self.evidence.get("seeds")

    @property
    def signer(self):
        """The signer's fingerprint as evidence/capture.json names it."""
        return self.evidence.get("signer")

    @property
    def signed_data(self) -> dict:
        """The digest file's signedData ({} for an unsigned capture)."""
        return self.digest.get("signedData") or {}

    @property
    def datapackage_hash(self):
        return self.digest.get("hash")

    def description(self) -> dict:
        """What `archive show` and `archive ls` print of a capture."""
        return {
            "created": self.created,
            "title": self.datapackage.get("title"),
            "seeds": self.seeds,
            "operator": self.evidence.get("operator"),
            "signer": self.signer,
            "stats": self.evidence.get("stats"),
        }


MEMBERS = {"datapackage": DATAPACKAGE, "digest": DIGEST, "evidence": CAPTURE}


def read_claims(zf: zipfile.ZipFile, required: tuple[str, ...] = (),
                optional: tuple[str, ...] = tuple(MEMBERS.values()), limit: int = JSON_LIMIT) -> Claims:
    """The claims of the WACZ open in `zf`. A member named in `required` must be there
    (KeyError) and be a JSON object (ValueError); one in `optional` is {} when absent or
    not an object; the rest are not read (each is a ranged read on S3). ValueError for a
    member over `limit` bytes or not JSON, zipfile.BadZipFile for a damaged one."""
    names = set(zf.namelist())
    found = {}
    for key, name in MEMBERS.items():
        if name not in names or name not in required + optional:
            if name in required:
                raise KeyError(f"there is no item named {name!r} in the archive")
            found[key] = {}
            continue
        value = parse_json(read_small(zf, name, limit))
        if not isinstance(value, dict) and name in required:
            raise ValueError(f"{name} is not a JSON object")
        found[key] = value if isinstance(value, dict) else {}
    return Claims(**found)
