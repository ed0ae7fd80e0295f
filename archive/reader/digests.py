"""Block and payload digests of a WARC record, computed as its bytes pass and compared
the way warcio compares them (`_compare_digest_rfc_3548`): a header value may be base32,
base16 or base64."""

from __future__ import annotations

import base64
import binascii
import hashlib

from archive.hashing import HashThread, parse_digest
from archive.httpmessage import PayloadSplitter, has_http_headers

# base32 digits to the digits int(..., 32) reads; any other byte to "!", which it refuses
_B32_TO_INT = bytes(
    b"0123456789abcdefghijklmnopqrstuv"[b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".index(c)]
    if c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" else ord("!") for c in range(256))


def digest_matches(computed: bytes, header_value: str) -> bool:
    """warcio's comparison: our digest in base32 against the header value, which may be
    base32 (compared as text), base16 (longer) or base64 (shorter)."""
    value = header_value.partition(":")[2]
    bits = len(computed) * 8
    chars = -(-bits // 5)
    b32_length = -(-chars // 8) * 8
    if len(value) == b32_length:
        # equal as text to our base32 <=> the same number (the encoding is one to one);
        # int() does in C what base64.b32encode does in Python
        digits, padding = value[:chars], value[chars:]
        if padding != "=" * (b32_length - chars) or not digits.isascii():
            return False
        try:
            number = int(digits.encode("ascii").translate(_B32_TO_INT), 32)
        except ValueError:          # a character outside the base32 alphabet
            return False
        return number == int.from_bytes(computed, "big") << (chars * 5 - bits)
    ours = base64.b32encode(computed).decode("ascii")
    try:
        if len(value) > len(ours):
            raw = base64.b16decode(value, casefold=True)
        elif "-" in value or "_" in value:
            raw = base64.b64decode(value, altchars=b"-_")
        else:
            raw = base64.b64decode(value)
    except (binascii.Error, ValueError):
        return False
    return base64.b32encode(raw).decode("ascii") == ours


_CONSTRUCTORS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "md5": hashlib.md5}


class _Digest:
    __slots__ = ("header", "label", "hasher", "error")

    def __init__(self, header: str | None, label: str):
        self.header, self.label, self.hasher, self.error = header, label, None, None
        if header and header.startswith("sha256:"):
            self.hasher = hashlib.sha256()
        elif header:
            algorithm, sep, _ = header.partition(":")
            try:
                if not sep:
                    raise ValueError
                make = _CONSTRUCTORS.get(algorithm)
                self.hasher = make() if make else hashlib.new(algorithm)
            except (ValueError, TypeError):
                self.error = f"unknown hash algorithm in {label} digest {header!r}"

    def problem(self) -> str | None:
        if self.error:
            return self.error
        if self.hasher is not None and not digest_matches(self.hasher.digest(), self.header):
            return f"{self.label} digest does not match the content ({self.header})"
        return None


class RecordDigests:
    """Block and payload digests of one record, fed its block in pieces."""

    __slots__ = ("block", "payload", "splitter", "length", "seen", "revisit")

    def __init__(self, record_type: str | None, uri: str | None, length: int,
                 block_digest: str | None, payload_digest: str | None, segmented: bool):
        revisit = self.revisit = record_type == "revisit"
        self.block = _Digest(None if revisit else block_digest, "block")
        self.payload = _Digest(None if revisit or segmented else payload_digest, "payload")
        self.splitter = PayloadSplitter() if has_http_headers(record_type or "", uri, length) else None
        self.length = length
        self.seen = 0
        block, payload = self.block.hasher, self.payload.hasher
        if self.splitter is None and block is not None and payload is not None \
                and block.name == payload.name:
            # No HTTP headers (a resource: a media file, a screenshot): the payload is the
            # block, so one hash serves both digests (a gigabyte video is hashed once)
            self.payload.hasher = block

    def spread(self, block_too: bool) -> None:
        """Hash the payload (and with `block_too` the block) on a thread of its own: a
        large record (a video, say) then takes two cores instead of taking turns on one.
        A payload that is the whole block keeps sharing the block's one hash (see above)."""
        block, payload = self.block.hasher, self.payload.hasher
        if block is not None and block_too:
            self.block.hasher = HashThread(block)
        if payload is not None:
            self.payload.hasher = self.block.hasher if payload is block else HashThread(payload)

    def release(self) -> None:
        """Stop the threads of spread() when the record will not be concluded (cut short)."""
        for digest in (self.block, self.payload):
            if isinstance(digest.hasher, HashThread):
                digest.hasher.close()

    def update(self, data) -> None:
        self.seen += len(data)
        if self.block.hasher is not None:
            self.block.hasher.update(data)
        if self.payload.hasher is not None and self.payload.hasher is not self.block.hasher:
            if self.splitter is None or self.splitter.done:
                self.payload.hasher.update(data)
            else:
                start = self.splitter.feed(data)
                if start is not None:
                    self.payload.hasher.update(data[start:])

    def results(self) -> tuple[list[str], int]:
        """(problems, digests compared). warcio never compares the block digest of an
        empty block, and we follow it."""
        messages, checked = [], 0
        digests = (self.block, self.payload) if self.length else (self.payload,)
        for digest in digests:
            if digest.header:
                checked += 1
                message = digest.problem()
                if message:
                    messages.append(message)
        return messages, checked


# field names as written -> as compared; the names of one file are nearly always the same
# few, and normalising each anew was a good part of the per-record work

def same_digest(a: str, b: str) -> bool:
    """Two digest headers name the same value (base32, base16 or base64 spellings)."""
    pa, pb = parse_digest(a), parse_digest(b)
    if pa and pb:
        return pa == pb
    return a.split(":")[-1].upper() == b.split(":")[-1].upper()
