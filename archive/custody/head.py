"""Signed tree heads: what the log held at a size, signed by whoever appended.

    {"size": 1000, "root": "<hex of the RFC 9162 root over entries 1..1000>",
     "time": "2026-11-25T16:07:46.123456Z", "key": "<fingerprint>" | null,
     "signature": <signedData over sha256 of the canonical head without it> | null}

A head is written with every append (by the appender's key, unsigned for an actor
without one). `size:root` is what a reader notes to check later that the log only grew
(`--anchor`, `custody verify --since`).
"""

from __future__ import annotations

import re

from archive import utctime
from archive.custody.entry import body_hash, signed_by_problem
from archive.errors import ArchiveError
from archive.seal.sign import Signer

HEAD_FIELDS = {"size", "root", "time", "key", "signature"}
HEX = re.compile(r"^[0-9a-f]{64}$")


def make_head(size: int, root: bytes, signer: Signer | None) -> dict:
    head = {"size": size, "root": root.hex(), "time": utctime.micros(),
            "key": signer.fingerprint if signer else None}
    head["signature"] = signer.sign(body_hash(head), head["time"]) if signer else None
    return head


def head_shape_problem(head) -> str | None:
    if not isinstance(head, dict) or set(head) != HEAD_FIELDS:
        return "not a tree head"
    size = head["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "not a tree head (size)"
    if not isinstance(head["root"], str) or not HEX.match(head["root"]):
        return "not a tree head (root)"
    return None


def head_problem(head, trusted: dict[str, str] | None = None) -> str | None:
    """Why a head cannot be taken as written by its key (None: it can, or it is plainly
    unsigned)."""
    return head_shape_problem(head) or signed_by_problem(head, head.get("key"), trusted)


def head_text(head: dict) -> str:
    """`size:root`, the form --anchor and --since take."""
    return f"{head['size']}:{head['root']}"


def parse_head_text(text: str) -> tuple[int, bytes]:
    """`SIZE:HEX` (a head as `custody verify` prints it) -> (size, root)."""
    size, _, root = text.partition(":")
    if not size.isdigit() or not HEX.match(root):
        raise ArchiveError(f"not a tree head: {text!r} (give SIZE:HEX, as `head` prints it)")
    return int(size), bytes.fromhex(root)
