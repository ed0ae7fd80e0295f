"""Property-based tampering: whatever is done to a sealed capture, it is NOT VERIFIED
and the report names the failing part. CI runs a few hundred cases (derandomised, so
every run checks the same ones); HYPOTHESIS_PROFILE=thorough runs thousands, at random."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from archive.cli.common import trusted_keys
from archive.verify.checks import verify_source
from archive.verify.model import NOT_VERIFIED, VERIFIED, VerifyOptions
from archive.reader.source import Source
from archive.wacz.ziplayout import LOCAL
from tests.verifyhelp import gzip_members, make_capture, refresh, rezip

settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
SCALE = 20 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 1


def cases(n: int):
    return settings(max_examples=n * SCALE)


class Captures(tuple):
    def __repr__(self) -> str:          # keep hypothesis' failure reports readable
        return "<two sealed captures>"


@pytest.fixture(scope="module")
def captures(tmp_path_factory, keydir) -> tuple[bytes, bytes, VerifyOptions, Path]:
    folder = tmp_path_factory.mktemp("tamper")
    first = make_capture(folder / "a", keydir, "/", "/about")
    second = make_capture(folder / "b", keydir, "/", "/about")
    options = VerifyOptions(trusted_keys([str(keydir / "signing-key.pub.pem")]))
    return Captures((first.read_bytes(), second.read_bytes(), options, folder))


def _verify(data: bytes, options: VerifyOptions):
    return verify_source(Source("tampered.wacz", len(data), lambda: io.BytesIO(data)), options)


def _members(data: bytes) -> list[tuple[str, int, int]]:
    """(name, start of local header, end of data) of each member."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, i.header_offset, i.header_offset + LOCAL.size + len(i.filename) + i.file_size)
                for i in zf.infolist()]


def _named(report, name: str) -> bool:
    return any(p.file == name or name in p.message for c in report.checks if c.status == "fail"
               for p in c.problems) or any(name in c.summary for c in report.checks if c.status == "fail")


def _assert_not_verified(report) -> None:
    assert report.verdict == NOT_VERIFIED, report.reason
    failing = [c for c in report.checks if c.status == "fail"]
    assert failing and all(c.summary for c in failing)


def test_the_untouched_captures_verify(captures):
    first, second, options, _ = captures
    assert _verify(first, options).verdict == VERIFIED
    assert _verify(second, options).verdict == VERIFIED


@given(where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
@cases(300)
def test_any_single_bit_flip(captures, where, bit):
    first, _, options, _ = captures
    data = bytearray(first)
    pos = int(where * len(data))
    data[pos] ^= 1 << bit
    report = _verify(bytes(data), options)
    _assert_not_verified(report)
    for name, start, end in _members(first):
        if start + LOCAL.size + len(name) <= pos < end:      # inside a member's data
            assert _named(report, name), (pos, name, report.reason)


@given(keep=st.floats(0, 1, exclude_max=True))
@cases(100)
def test_any_truncation(captures, keep):
    first, _, options, _ = captures
    size = max(4, int(keep * len(first)))
    report = _verify(first[:size], options)
    _assert_not_verified(report)
    assert report.check("container").status == "fail"


@given(where=st.floats(0, 1), data=st.binary(min_size=1, max_size=64))
@cases(100)
def test_any_insertion(captures, where, data):
    first, _, options, _ = captures
    pos = int(where * len(first))
    _assert_not_verified(_verify(first[:pos] + data + first[pos:], options))


def _warc(data: bytes) -> tuple[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        name = next(n for n in zf.namelist() if n.startswith("archive/"))
        return name, zf.read(name)


@given(st.data())
@cases(60)
def test_deleted_or_reordered_records_even_with_every_hash_recomputed(captures, data):
    first, _, options, folder = captures
    name, warc = _warc(first)
    members = gzip_members(warc)
    if data.draw(st.booleans(), "delete"):
        drop = data.draw(st.integers(0, len(members) - 1), "record")
        changed = members[:drop] + members[drop + 1:]
    else:
        i = data.draw(st.integers(0, len(members) - 2), "i")
        j = data.draw(st.integers(i + 1, len(members) - 1), "j")
        changed = list(members)
        changed[i], changed[j] = changed[j], changed[i]
    src = folder / "src.wacz"
    src.write_bytes(first)
    out = refresh(src, folder / "out.wacz", {name: b"".join(changed)})
    report = _verify(out.read_bytes(), options)
    _assert_not_verified(report)
    assert report.check("signature").status == "fail"      # hashes redone; the signature cannot be
    plain = rezip(src, folder / "plain.wacz", {name: b"".join(changed)})
    report = _verify(plain.read_bytes(), options)
    _assert_not_verified(report)
    assert _named(report, name)


def test_warc_files_swapped_between_captures(captures):
    first, second, options, folder = captures
    (folder / "a.wacz").write_bytes(first)
    name_a, _ = _warc(first)
    _, warc_b = _warc(second)
    swapped = refresh(folder / "a.wacz", folder / "swapped.wacz", {name_a: warc_b})
    report = _verify(swapped.read_bytes(), options)
    _assert_not_verified(report)
    failing = {c.name for c in report.checks if c.status == "fail"}
    assert {"signature", "index"} <= failing


def test_signature_replayed_from_another_capture(captures):
    first, second, options, folder = captures
    (folder / "a.wacz").write_bytes(first)
    with zipfile.ZipFile(io.BytesIO(second)) as zf:
        digest = zf.read("datapackage-digest.json")
    replayed = rezip(folder / "a.wacz", folder / "replayed.wacz", {"datapackage-digest.json": digest})
    report = _verify(replayed.read_bytes(), options)
    _assert_not_verified(report)
    assert report.check("datapackage-digest").status == "fail"
    assert report.check("signature").status == "fail"
