"""The custody ledger as a verifiable log at scale: 100,000 entries appended by the
ledger's own code (no real captures), real captures at both ends. Verifying one capture
reads its own entries and a logarithmic proof; the full check is linear and finds
tampering anywhere; `--since` checks an appended range; anchors catch a rewritten log."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from archive.cli import main as cli_main
from archive.custody import merkle
from archive.custody.entry import Actor, canonical, make_entry
from archive.custody.ledger import FileLedger, ObjectLedger
from archive.custody.log import CustodyLog
from archive.custody.logcheck import LogCheck
from archive.custody.proof import prove_capture
from tests.conftest import PASSPHRASE
from tests.site import SiteServer, standard_site

BULK = 100_000
OTHERS = 500           # capture ids the bulk entries name


def bulk(ledger, count: int, offset: int = 0) -> None:
    """`count` unsigned 'verified' entries, appended by the ledger's own code in one go."""
    actor = Actor("bulk")
    ledger.append_many([
        lambda seq, prev, i=i: make_entry(seq, prev, "verified", actor, other_id(i % OTHERS), "ab" * 32,
                                          {"n": i})
        for i in range(offset, offset + count)])


def other_id(n: int) -> str:
    return f"20250308T121500Z-{n:08x}"


def cli(*args) -> tuple[int, str]:
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli_main([str(a) for a in args])
    return code, out.getvalue()


@pytest.fixture(scope="session")
def big(tmp_path_factory, keydir):
    """A store: a real capture, 100,000 bulk entries, another real capture (where the
    size is the point: what verifying one capture, the full check and --since cost)."""
    return _shared_log(tmp_path_factory, keydir, "biglog", BULK)


@pytest.fixture(scope="session")
def small(tmp_path_factory, keydir):
    """The same with 40 bulk entries, where the size is not the point."""
    return _shared_log(tmp_path_factory, keydir, "smalllog", 40)


def _shared_log(tmp_path_factory, keydir: Path, name: str, count: int):
    """(store, the two capture ids, the signer's public key), made once per test run:
    pytest-xdist workers share it (the first one builds it, under a lock)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ready = shared / name / "ready.json"
        if not ready.exists():
            made = _make_log(shared / name, keydir, count)
            shutil.copyfile(keydir / "signing-key.pub.pem", shared / name / "signer.pub.pem")
            ready.write_text(json.dumps(made[1]))
    # the signer's public key goes with the store (each worker makes keys of its own)
    return shared / name / "store", json.loads(ready.read_text()), shared / name / "signer.pub.pem"


def _make_log(root: Path, keydir: Path, count: int):
    store = root / "store"
    old = os.environ.get("ARCHIVE_KEY_PASSPHRASE")
    os.environ["ARCHIVE_KEY_PASSPHRASE"] = PASSPHRASE
    ids = []
    try:
        with SiteServer(standard_site()) as site:
            for n, path in enumerate(("/", "/about")):
                code, out = cli("capture", site.url(path), "--key", keydir / "signing-key.pem",
                                "--store", store, "--work-dir", root / "work", "--quiet", "--json")
                assert code == 0, out
                ids.append(json.loads(out)["capture_id"])
                if n == 0:
                    bulk(FileLedger(store / "custody" / "ledger.jsonl"), count)
    finally:
        if old is None:
            os.environ.pop("ARCHIVE_KEY_PASSPHRASE", None)
        else:
            os.environ["ARCHIVE_KEY_PASSPHRASE"] = old
    return store, ids


@pytest.fixture
def store(big, tmp_path) -> Path:
    """A copy of the big store a test may damage."""
    return copy_store(big[0], tmp_path)


@pytest.fixture
def small_store_copy(small, tmp_path) -> Path:
    """A copy of the small store a test may damage."""
    return copy_store(small[0], tmp_path)


def copy_store(shared: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(shared, copy, copy_function=os.link)
    custody = copy / "custody"
    shutil.rmtree(custody)
    shutil.copytree(shared / "custody", custody)     # the ledger is appended to: its own copy
    return copy


def edit_line(ledger: Path, number: int, old: bytes, new: bytes) -> None:
    """Change bytes of one line in place, keeping its length (offsets stay right)."""
    assert len(old) == len(new)
    with open(ledger, "r+b") as fh:
        for _ in range(number - 1):
            fh.readline()
        pos = fh.tell()
        line = fh.readline()
        assert old in line, line
        fh.seek(pos)
        fh.write(line.replace(old, new, 1))


def test_verify_one_capture_reads_a_proof_not_the_ledger(big, store):
    first, second = big[1]
    pubkey = big[2]
    for capture_id in (first, second):
        started = time.monotonic()
        code, out = cli("verify", capture_id, "--store", store, "--trust", pubkey, "--json")
        took = time.monotonic() - started
        report = json.loads(out)
        custody = {c["name"]: c for c in report["checks"]}["custody"]
        assert code == 0 and custody["status"] == "pass", custody
        assert "each proven in the log under its head" in custody["summary"], custody
        assert [e["event"] for e in report["custody"]][:3] == ["captured", "sealed", "stored"]
        assert took < 20, took        # the whole ledger takes far longer (and the old check, minutes)
    ledger = FileLedger(store / "custody" / "ledger.jsonl")
    assert ledger.records_after(ledger.tree_size(), 10) == ([], False)   # each verify made a head
    proof = prove_capture(ledger, first)
    assert proof.proven == len(proof.records) == 4 and not proof.problems   # + one 'verified'


def test_the_full_check_is_linear_and_finds_tampering_anywhere(big, store):
    pubkey = big[2]
    ledger = store / "custody" / "ledger.jsonl"
    started = time.monotonic()
    code, out = cli("custody", "verify", "--store", store, "--json")
    report = json.loads(out)
    assert code == 0 and report["intact"] and report["entries"] == BULK + 6, report["breaks"]
    assert report["log"]["size"] == BULK + 6 and report["log"]["heads_checked"] >= 6
    whole = time.monotonic() - started
    head = report["log"]["latest_head"]["text"]

    first = big[1][0]
    edit_line(ledger, 3, b'"event":"stored"', b'"event":"stoled"')   # the first capture's entry
    edit_line(ledger, 50_000, b'"n":', b'"m":')                        # a bulk entry, mid-ledger
    code, out = cli("custody", "verify", "--store", store)
    assert code == 1 and out.startswith("BROKEN"), out
    assert "entry 3 (line 3): unknown event 'stoled'" in out, out
    assert "entry 3 (the tree of ledger.jsonl, entry 3): the tree's node at level 0 differs" in out
    assert "entry 50000 (the tree of ledger.jsonl, entry 50000): the tree's node at level 0 differs" in out
    assert "entry 50001 (line 50001): does not link to the entry before it (line 50000)" in out
    assert "the head signed for size 3 does not match the entries up to it" in out
    assert out.count("\n") < 20, out             # said once each, not once per node or head above
    # verifying the capture whose entry was altered: its proof fails; the other's holds
    code, out = cli("verify", first, "--store", store, "--trust", pubkey, "--json", "--no-record")
    custody = {c["name"]: c for c in json.loads(out)["checks"]}["custody"]
    assert code == 1 and custody["status"] == "fail"
    assert any("entry 3 " in p["message"] and "is not in the log as its latest head" in p["message"]
               for p in custody["problems"]), custody
    code, out = cli("verify", big[1][1], "--store", store, "--trust", pubkey, "--json", "--no-record")
    assert code == 0, out
    # --since proves the tree only grew (nothing was appended since): the entries behind
    # it are read by the full check, or by verifying a capture (as above)
    code, out = cli("custody", "verify", "--store", store, "--since", head)
    assert code == 0 and "INTACT: 0 entries appended since" in out, out
    assert whole < 120, whole


def test_since_checks_only_the_appended_range(big, store):
    ledger = FileLedger(store / "custody" / "ledger.jsonl")
    code, out = cli("custody", "verify", "--store", store, "--since", f"{BULK + 6}:{'0' * 64}")
    assert code == 1 and "is not the one noted" in out        # a head this log never had
    size = ledger.tree_size()
    root = merkle.fold_peaks(ledger.peaks(size)).hex()
    bulk(ledger, 300, offset=BULK)
    started = time.monotonic()
    code, out = cli("custody", "verify", "--store", store, "--since", f"{size}:{root}", "--json")
    report = json.loads(out)
    assert code == 0 and report["entries"] == 300 and report["intact"], report
    assert time.monotonic() - started < 10
    code, out = cli("custody", "verify", "--store", store, "--since", f"{size + 301}:{root}")
    assert code == 1 and "the log no longer reaches the noted head" in out, out


def small_store(tmp_path, count: int = 40) -> tuple[Path, FileLedger]:
    store = tmp_path / "store"
    ledger = FileLedger(store / "custody" / "ledger.jsonl")
    bulk(ledger, count)
    return store, ledger


def test_since_and_anchor_catch_a_rewritten_log(tmp_path):
    store, ledger = small_store(tmp_path)
    size = ledger.tree_size()
    head = f"{size}:{merkle.fold_peaks(ledger.peaks(size)).hex()}"
    bulk(ledger, 5, offset=100)
    assert cli("custody", "verify", "--store", store, "--since", head)[0] == 0
    assert cli("custody", "verify", "--store", store, "--anchor", head)[0] == 0
    # an entry before the noted head rewritten, and the tree rebuilt over it
    edit_line(ledger.path, 10, b'"n":', b'"m":')
    shutil.rmtree(ledger.path.parent / "tree")
    (ledger.path.parent / "heads.jsonl").unlink()
    ledger.upgrade(None)
    code, out = cli("custody", "verify", "--store", store, "--since", head)
    assert code == 1 and "is not the one noted" in out and "rewritten since" in out, out
    code, out = cli("custody", "verify", "--store", store, "--anchor", head)
    assert code == 1 and f"the log up to here is not the one you noted ({head})" in out, out
    proof = prove_capture(ledger, other_id(0), (size, bytes.fromhex(head.split(":")[1])))
    assert any("contradicts the head you noted" in p for p in proof.problems), proof


def test_a_torn_line_is_named_never_condemns_and_is_repaired(tmp_path):
    store, ledger = small_store(tmp_path)
    with open(ledger.path, "ab") as fh:
        fh.write(b'{"seq":41,"ti')                  # an append cut by a full disk or a crash
    code, out = cli("custody", "verify", "--store", store)
    assert code == 0 and "line 41: an incomplete last line" in out and "custody repair" in out, out
    assert "head: 40:" in out and "None" not in out
    proof = prove_capture(ledger, other_id(3))
    assert proof.proven == len(proof.records) > 0 and not proof.problems, proof
    code, out = cli("custody", "repair", "--store", store)
    assert code == 0 and "moved to" in out
    code, out = cli("custody", "verify", "--store", store)
    assert code == 0 and "incomplete" not in out
    assert (ledger.path.parent / "torn").is_dir()


def test_a_plain_chain_is_upgraded_explicitly_and_the_upgrade_is_recorded(tmp_path, key):
    store, ledger = small_store(tmp_path, 20)
    shutil.rmtree(ledger.path.parent / "tree")
    (ledger.path.parent / "heads.jsonl").unlink()
    shutil.rmtree(ledger.path.parent / "index")
    assert not ledger.is_log()
    bulk(ledger, 3, offset=20)                      # a plain chain stays one when appended to
    assert not ledger.is_log()
    code, out = cli("custody", "verify", "--store", store)
    assert code == 0 and "plain hash chain" in out and "custody upgrade" in out, out
    code, out = cli("custody", "upgrade", "--store", store, "--key", key)
    assert code == 0 and out.startswith(f"upgraded {ledger.path}: 23 entries under root "), out
    assert out.rstrip().endswith("the upgrade is entry 24"), out
    last = ledger.records()[-1].entry
    assert last["event"] == "upgraded" and last["details"]["entries"] == 23 and last["signature"]
    code, out = cli("custody", "verify", "--store", store)
    assert code == 0 and "Merkle tree" in out, out
    assert prove_capture(ledger, other_id(1)).proven == 1
    code, out = cli("custody", "upgrade", "--store", store, "--key", key, "--json")
    assert code == 2 and out == ""                                                 # once only
    shutil.rmtree(ledger.path.parent / "tree")      # a log made a plain chain again shows
    code, out = cli("custody", "verify", "--store", store)
    assert code == 1 and "made a verifiable log here, but its tree and heads are gone" in out, out


# -- object storage ---------------------------------------------------------------------

S3_BULK = 100


def count_requests(client) -> list[str]:
    seen: list[str] = []
    client.meta.events.register("before-send.s3", lambda request, **_: seen.append(request.method))
    return seen


def test_on_s3_one_capture_costs_a_few_dozen_requests_and_tampering_shows(s3):
    from archive.store.address import open_store
    store = open_store(s3.address("log"))
    ledger = ObjectLedger(store)
    mine = "20261207T000000Z-0000beef"
    actor = Actor("op")
    ledger.append(lambda seq, prev: make_entry(seq, prev, "stored", actor, mine, "cd" * 32, {}))
    bulk(ledger, S3_BULK)
    ledger.append(lambda seq, prev: make_entry(seq, prev, "verified", actor, mine, "cd" * 32, {}))

    reader = ObjectLedger(open_store(s3.address("log")))
    sent = count_requests(reader.store.client)
    proof = prove_capture(reader, mine)
    assert proof.proven == 2 and not proof.problems and not proof.elsewhere, proof
    assert len(sent) <= 30, len(sent)            # 3 listings for the head, index, entries, proof nodes
    report = LogCheck(ObjectLedger(open_store(s3.address("log")))).run()
    assert report.intact and report.entries == S3_BULK + 2, report.breaks

    entry = json.loads(s3.read("log/custody/000000000001.json"))
    entry["wacz"] = "ef" * 32
    s3.client.put_object(Bucket=s3.bucket, Key="log/custody/000000000001.json", Body=canonical(entry))
    proof = prove_capture(ObjectLedger(open_store(s3.address("log"))), mine)
    assert any("entry 1 " in p and "is not in the log" in p for p in proof.problems), proof
    report = LogCheck(ObjectLedger(open_store(s3.address("log")))).run()
    assert not report.intact and any("level 0 differs" in b.message for b in report.breaks)


@pytest.fixture
def full_disk(tmp_path):
    """A real file system of 2 MiB (tmpfs; the tests run as root, as CI does)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=2m tmpfs {mount} 2>/dev/null") != 0:
        pytest.skip("needs root to mount a tmpfs")
    try:
        yield mount
    finally:
        os.system(f"umount {mount}")


def fill(path: Path, leave: int) -> Path:
    """Fill the file system holding `path` until `leave` bytes are free."""
    filler = path / "filler"
    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    with open(filler, "wb") as fh:
        try:
            fh.write(b"\0" * max(free - leave, 0))
        except OSError:
            pass
    return filler


def test_a_full_disk_never_tears_the_ledger(full_disk):
    ledger = FileLedger(full_disk / "store" / "custody" / "ledger.jsonl")
    bulk(ledger, 50)
    before = {p.name: p.read_bytes() for p in ledger.path.parent.rglob("*") if p.is_file()}
    filler = fill(full_disk, 0)         # the last page of the ledger has room for part of an entry
    log = CustodyLog(None, Actor("investigator"), ledger)
    for n in range(3):
        assert log.record("verified", other_id(1), "ab" * 32, pad="x" * 6000) is None
    assert "No space left on device" in log.problems[0]
    assert ledger.path.read_bytes() == before["ledger.jsonl"]          # all or nothing
    assert check_intact(ledger)
    filler.unlink()
    assert log.record("verified", other_id(1), "ab" * 32) is not None
    assert check_intact(ledger) and ledger.tree_size() == 51


def check_intact(ledger) -> bool:
    report = LogCheck(ledger).run()
    assert report.intact and not report.notes, (report.breaks, report.notes)
    return True


def test_a_forged_head_is_named(tmp_path, key):
    from archive.keys import load_private_key
    from archive.seal.sign import Signer
    store, ledger = small_store(tmp_path, 10)
    signer = Signer(load_private_key(key, PASSPHRASE.encode()))
    ledger.append(lambda seq, prev: make_entry(seq, prev, "stored", Actor("op", signer), other_id(2), "cd" * 32, {}),
                  signer)
    heads = ledger.path.parent / "heads.jsonl"
    lines = heads.read_bytes().splitlines(keepends=True)
    head = json.loads(lines[-1])
    assert head["size"] == 11 and head["key"] == signer.fingerprint and head["signature"]
    head["root"] = "00" * 32                       # a head for a log that does not exist
    heads.write_bytes(b"".join(lines[:-1]) + canonical(head) + b"\n")
    code, out = cli("custody", "verify", "--store", store)
    assert code == 1 and "a forged or damaged head: content does not match its signature" in out, out
    proof = prove_capture(ledger, other_id(2))
    # named, and passed over: the capture's entries are proven under the head before it
    assert proof.forged and "the log's newest head" in proof.forged[0] and "forged" in proof.forged[0]
    assert "content does not match its signature" in proof.forged[0], proof.forged
    assert not proof.problems and proof.head["size"] == 10 and proof.proven == 1, proof
    assert "proven under the newest head that verifies, 10:" in proof.elsewhere[0], proof.elsewhere


def _forge_newest_head(heads: Path, how: str) -> None:
    """The newest head of a local log forged, keeping a head's structure: its signature
    bytes replaced, or a head of the same size with another root appended unsigned."""
    lines = heads.read_bytes().splitlines(keepends=True)
    head = json.loads(lines[-1])
    assert head["signature"], head          # the newest head is the capture's signer's
    if how == "signature":
        sig = head["signature"]["signature"]
        head["signature"]["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]
        heads.write_bytes(b"".join(lines[:-1]) + canonical(head) + b"\n")
    else:
        forged = {**head, "root": "00" * 32, "key": None, "signature": None}
        heads.write_bytes(b"".join(lines) + canonical(forged) + b"\n")


@pytest.mark.parametrize("how", ["signature", "root"])
def test_a_forged_newest_head_is_named_and_good_captures_still_verify(small, small_store_copy, how):
    first, second = small[1]
    pubkey, store = small[2], small_store_copy
    heads = store / "custody" / "heads.jsonl"
    lines = len(heads.read_bytes().splitlines())
    _forge_newest_head(heads, how)
    code, out = cli("custody", "verify", "--store", store)
    assert code == 1 and out.startswith("BROKEN"), out
    named = f"heads.jsonl line {lines + (how == 'root')}"
    assert named in out, out
    assert ("a forged or damaged head" if how == "signature" else "does not match the entries") in out, out
    for capture_id in (first, second):
        code, out = cli("verify", capture_id, "--store", store, "--trust", pubkey, "--json", "--no-record")
        report = json.loads(out)
        custody = {c["name"]: c for c in report["checks"]}["custody"]
        assert code == 0 and report["verdict"] == "VERIFIED", report
        assert custody["status"] == "warn" and "newest head" in custody["summary"], custody
        said = " ".join([custody["summary"], *(p["message"] for p in custody["problems"])])
        assert "forged or damaged" in said and "proven under the newest head that verifies" in said, said
    code, out = cli("custody", "show", first, "--store", store)
    assert code == 0 and "BROKEN" not in out and "the log's newest head" in out and "forged" in out, out
    # a tampered entry of a capture still fails it, forged head or not
    edit_line(store / "custody" / "ledger.jsonl", 3, b'"event":"stored"', b'"event":"stoled"')
    code, out = cli("verify", first, "--store", store, "--trust", pubkey, "--json", "--no-record")
    custody = {c["name"]: c for c in json.loads(out)["checks"]}["custody"]
    assert code == 1 and custody["status"] == "fail", custody
    assert any("entry 3 " in p["message"] for p in custody["problems"]), custody


def test_a_tree_object_put_far_past_the_end_costs_no_read_per_number(tmp_path):
    from archive.custody.ledger import tree_key, tree_object
    from archive.custody.head import make_head
    from archive.store.local import LocalStore
    store = LocalStore(tmp_path / "objects")
    ledger = ObjectLedger(store)
    bulk(ledger, 5)
    store.put_object(tree_key(5_000_000), tree_object(make_head(5_000_000, b"\0" * 32, None), [], []))
    started = time.monotonic()
    report = LogCheck(ObjectLedger(store)).run()
    assert time.monotonic() - started < 30
    assert not report.intact and any("claims 5000000 entries, but none from entry 6 on" in b.message
                                     for b in report.breaks), report.breaks


def test_in_object_storage_forged_newest_heads_are_passed_over(tmp_path, key):
    """The same on an object ledger (one head per tree object): the newest heads that do
    not verify are named, the capture proven under the newest that does; with none left,
    nothing is proven."""
    from archive.custody.ledger import tree_key
    from archive.keys import load_private_key
    from archive.seal.sign import Signer
    from archive.store.local import LocalStore
    store = LocalStore(tmp_path / "objects")
    ledger = ObjectLedger(store)
    signer = Signer(load_private_key(key, PASSPHRASE.encode()))
    mine = other_id(1)
    for n in range(4):
        ledger.append(lambda seq, prev, n=n: make_entry(seq, prev, "verified" if n else "stored",
                                                        Actor("op", signer), mine, "cd" * 32, {}), signer)

    def forge(seq: int) -> None:
        path = tmp_path / "objects" / tree_key(seq)
        tree = json.loads(path.read_bytes())
        sig = tree["head"]["signature"]["signature"]
        tree["head"]["signature"]["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]
        path.write_bytes(canonical(tree))

    forge(4)
    forge(3)
    proof = prove_capture(ObjectLedger(store), mine)
    assert not proof.problems and proof.head["size"] == 2 and proof.proven == 2, proof
    assert len(proof.forged) == 2 and tree_key(4) in proof.forged[0] and tree_key(3) in proof.forged[1]
    assert len(proof.records) == 4          # entries 3 and 4 checked as a chain after that head
    report = LogCheck(ObjectLedger(store)).run()
    assert not report.intact and sum("forged or damaged head" in b.message for b in report.breaks) == 2
    forge(2)
    forge(1)
    proof = prove_capture(ObjectLedger(store), mine)
    assert proof.problems and "no head before it verifies" in proof.problems[0], proof
