"""The CDXJ index in blocks (index.cdx.gz + index.idx) as seal writes it and verify
checks it; replay of it by ReplayWeb.page is in test_replay.py."""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile

import pytest

from archive.reader.members import IdxSink, IndexSink
from archive.verify.zipnum import idx_problems
from archive.warc.zipnum import write_zipnum
from tests.verifyhelp import build_wacz, new_signer, refresh, rezip


def _lines(count: int, per_key: int = 1) -> list[str]:
    """CDXJ lines, `per_key` of them under each `<surt> <timestamp>` key."""
    return [f"test,site)/p/{i // per_key:05d} 20260101000000 "
            + json.dumps({"url": f"http://site.test/p/{i // per_key:05d}", "offset": str(i),
                          "filename": "x.warc.gz", "n": i})
            for i in range(count)]


def _blocks(data: bytes, idx: bytes) -> list[tuple[dict, bytes]]:
    out = []
    for line in idx.decode().splitlines()[1:]:
        key, fields = line.split(" {", 1)
        fields = json.loads("{" + fields)
        out.append((dict(fields, key=key), data[fields["offset"]:fields["offset"] + fields["length"]]))
    return out


def _check(data: bytes, idx: bytes, ours: bool = True) -> list[str]:
    index, listing = IndexSink("indexes/index.cdx.gz"), IdxSink("indexes/index.idx")
    for sink, body in ((index, data), (listing, idx)):
        for at in range(0, len(body), 1000):       # fed in pieces, as a scan reads
            sink.feed(body[at:at + 1000])
        sink.finish()
    return [p.message for p in idx_problems(listing, {index.name: index}, ours)]


def test_blocks_are_gzip_members_named_by_first_key_offset_length_and_digest_of_their_lines():
    lines = _lines(10_000)
    data, idx = write_zipnum(lines, block_lines=3000)
    head, *rest = idx.decode().splitlines()
    assert head == '!meta 0 {"format": "cdxj-gzip-1.0", "filename": "index.cdx.gz"}'
    assert gzip.decompress(data).decode().splitlines() == sorted(lines)      # all of it, in order
    blocks, offset = _blocks(data, idx), 0
    assert [len(gzip.decompress(b).splitlines()) for _, b in blocks] == [3000, 3000, 3000, 1000]
    for fields, block in blocks:
        plain = gzip.decompress(block)
        assert fields["offset"] == offset and fields["length"] == len(block)
        assert fields["digest"] == "sha256:" + hashlib.sha256(plain).hexdigest()    # as wabac.js checks
        assert fields["key"] == " ".join(plain.decode().split(" ", 2)[:2])          # `<surt> <timestamp>`
        offset += len(block)
    assert offset == len(data) and write_zipnum(lines, 3000) == (data, idx)     # same lines, same bytes
    assert _check(data, idx) == []


def test_a_block_is_never_cut_inside_a_key():
    """wabac.js keeps blocks by first key: two blocks under one key and one is lost."""
    data, idx = write_zipnum(_lines(40, per_key=7), block_lines=3)
    blocks = _blocks(data, idx)
    keys = [f["key"] for f, _ in blocks]
    assert len(keys) == len(set(keys)) == 6
    assert [len(gzip.decompress(b).splitlines()) for _, b in blocks] == [7, 7, 7, 7, 7, 5]
    assert _check(data, idx) == []


def test_an_empty_index_is_an_empty_gzip_file_and_an_idx_of_no_blocks():
    data, idx = write_zipnum([])
    assert gzip.decompress(data) == b"" and len(idx.decode().splitlines()) == 1
    assert _check(data, idx) == []


def _edit(idx: bytes, number: int, **changes) -> bytes:
    lines = idx.decode().splitlines()
    key, fields = lines[number].split(" {", 1)
    fields = json.loads("{" + fields)
    key = changes.pop("key", key)
    lines[number] = key + " " + json.dumps({**fields, **changes})
    return ("\n".join(lines) + "\n").encode()


def test_every_way_an_idx_can_misplace_a_block_is_found():
    data, idx = write_zipnum(_lines(9000), block_lines=3000)
    lines = idx.decode().splitlines()
    second = json.loads(lines[2].split(" ", 2)[2])
    cases = {
        "offset": _edit(idx, 2, offset=second["offset"] + 1),
        "length": _edit(idx, 2, length=second["length"] - 1),
        "digest": _edit(idx, 2, digest="sha256:" + "0" * 64),
        "key": _edit(idx, 2, key="test,site)/p/00001 20260101000000"),
        "missing": ("\n".join(lines[:2] + lines[3:]) + "\n").encode(),
        "order": ("\n".join([lines[0], lines[2], lines[1], lines[3]]) + "\n").encode(),
        "no meta": ("\n".join(lines[1:]) + "\n").encode(),
        "other format": ("\n".join([lines[0].replace("cdxj-gzip-1.0", "cdxj-gzip-9")] + lines[1:]) + "\n").encode(),
        "other file": ("\n".join([lines[0].replace("index.cdx.gz", "other.cdx.gz")] + lines[1:]) + "\n").encode(),
        "garbage": idx + b"not an idx line\n",
    }
    for name, bad in cases.items():
        assert _check(data, bad), name
    # a block appended to the index but named by no idx line: replay cannot find it
    extra = data + gzip.compress(b"zzz 20260101000000 {}\n")
    assert any("in no line of the idx" in p for p in _check(extra, idx))


def test_idx_files_as_py_wacz_and_js_wacz_write_them_are_accepted():
    """py-wacz hashes the gzip bytes of a block; js-wacz names it by its SURT alone."""
    data, idx = write_zipnum(_lines(5000), block_lines=3000)
    lines = idx.decode().splitlines()
    py_wacz, js_wacz = [lines[0]], [lines[0]]
    for fields, block in _blocks(data, idx):
        key = fields.pop("key")
        py_wacz.append(key + " " + json.dumps({**fields, "digest": "sha256:" + hashlib.sha256(block).hexdigest()}))
        js_wacz.append(key.split(" ")[0] + " " + json.dumps({**fields, "filename": "index.cdx.gz"}))
    for form in (py_wacz, js_wacz):
        assert _check(data, ("\n".join(form) + "\n").encode(), ours=False) == []


@pytest.fixture
def signed(tmp_path):
    signer, pub = new_signer(tmp_path / "keys")
    pages = [{"url": f"http://site.test/{i}", "body": b"<p>page %d</p>" % i} for i in range(3)]
    return build_wacz(tmp_path / "c.wacz", pages, signer), signer, pub


def test_a_capture_whose_idx_was_altered_does_not_verify(signed, tmp_path, run):
    wacz, _, pub = signed
    with zipfile.ZipFile(wacz) as zf:
        idx = zf.read("indexes/index.idx")
    altered = refresh(wacz, tmp_path / "altered.wacz", {"indexes/index.idx": _edit(idx, 1, length=5)})
    result = run("verify", altered, "--trust", pub, "--json")
    index = next(c for c in json.loads(result.out)["checks"] if c["name"] == "index")
    assert result.code == 1 and index["status"] == "fail" and "the idx does not match" in index["summary"], index
    assert any("index.idx" in (p.get("file") or "") for p in index["problems"]), index


def test_a_capture_sealed_before_the_idx_still_verifies(signed, tmp_path, run):
    """Captures sealed before this change hold one gzip member and no idx; signed then."""
    wacz, signer, pub = signed
    with zipfile.ZipFile(wacz) as zf:
        datapackage = json.loads(zf.read("datapackage.json"))
        lines = gzip.decompress(zf.read("indexes/index.cdx.gz"))
    single = gzip.compress(lines, mtime=0)
    datapackage["resources"] = [r for r in datapackage["resources"] if r["path"] != "indexes/index.idx"]
    for resource in datapackage["resources"]:
        if resource["path"] == "indexes/index.cdx.gz":
            resource.update(hash="sha256:" + hashlib.sha256(single).hexdigest(), bytes=len(single))
    dp = json.dumps(datapackage, indent=2).encode()
    dp_hash = "sha256:" + hashlib.sha256(dp).hexdigest()
    digest = {"path": "datapackage.json", "hash": dp_hash, "signedData": signer.sign(dp_hash, datapackage["created"])}
    old = rezip(wacz, tmp_path / "old.wacz", {"indexes/index.cdx.gz": single, "datapackage.json": dp,
                                             "datapackage-digest.json": json.dumps(digest).encode()},
                drop={"indexes/index.idx"})
    result = run("verify", old, "--trust", pub, "--allow-unsigned", "--json")
    report = json.loads(result.out)
    index = next(c for c in report["checks"] if c["name"] == "index")
    assert index["status"] == "pass" and "block" not in index["summary"], index
    assert report["signature"]["holds"] is True, report["signature"]
