"""The custody ledger: every event recorded, signed and chained; any edit, removal,
insertion or reordering found and located; concurrent writers never fork it."""

import hashlib
import json
import multiprocessing
import os
import shutil
import threading
import zipfile

import pytest

from archive.custody.chain import check_chain
from archive.custody.entry import Actor, canonical, sha256_of
from archive.custody.ledger import FileLedger, ObjectLedger, object_key
from archive.custody.log import CustodyLog
from archive.keys import fingerprint, load_private_key, load_public_key
from archive.seal.sign import Signer
from archive.store.local import LocalStore
from tests.conftest import PASSPHRASE, stored_waczs

CAPTURE = "20250308T121500Z-7f3a9c21"


@pytest.fixture
def signer(key) -> Signer:
    return Signer(load_private_key(key, PASSPHRASE.encode()))


def append(ledger, actor: Actor, n: int, event: str = "verified") -> None:
    log = CustodyLog(None, actor, ledger)
    assert log.record(event, CAPTURE, "ab" * 32, n=n) is not None, log.problems


def file_ledger(tmp_path, signer, count=6, unsigned=()) -> FileLedger:
    ledger = FileLedger(tmp_path / "custody" / "ledger.jsonl")
    for n in range(1, count + 1):
        append(ledger, Actor("alice", None if n in unsigned else signer), n)
    return ledger


def lines_of(ledger: FileLedger) -> list[bytes]:
    return ledger.path.read_bytes().splitlines(keepends=True)


def write_lines(ledger: FileLedger, lines: list[bytes]) -> None:
    ledger.path.write_bytes(b"".join(lines))


def edit(line: bytes, **changes) -> bytes:
    entry = json.loads(line)
    entry["details"].update(changes)
    return canonical(entry) + b"\n"


def first_break(ledger):
    report = check_chain(ledger.records(), ledger.location)
    assert report.breaks, "the change was not detected"
    return report.breaks[0]


def test_an_intact_ledger_verifies(tmp_path, signer):
    ledger = file_ledger(tmp_path, signer, unsigned=(4,))
    report = check_chain(ledger.records(), ledger.location)
    assert report.intact and report.entries == 6 and report.unsigned == 1
    assert report.signers == {signer.fingerprint: 5}
    entries = [r.entry for r in ledger.records()]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0]["prev"] is None
    assert all(e["prev"] == sha256_of(lines_of(ledger)[i].rstrip(b"\n")) for i, e in enumerate(entries[1:]))
    assert entries[3]["signature"] is None and entries[3]["actor"]["key"] is None   # plainly unsigned


@pytest.mark.parametrize("change, where, message", [
    ("edit signed entry", "line 3", "altered after signing"),
    ("edit unsigned entry", "line 4", "does not link to the entry before it (line 3)"),
    ("delete entry", "line 3", "entry 3 is missing before it"),
    ("reorder entries", "line 3", "out of order"),
    ("insert entry", "line 5", "repeats entry 4 (also at line 4)"),
    ("edit last entry", "line 6", "altered after signing"),
    ("resign with another key", "line 3", "not among the keys you trust"),
])
def test_every_change_to_the_ledger_is_detected_and_located(tmp_path, signer, change, where, message):
    ledger = file_ledger(tmp_path, signer, unsigned=(3,) if change == "edit unsigned entry" else ())
    lines = lines_of(ledger)
    if change in ("edit signed entry", "edit unsigned entry"):
        lines[2] = edit(lines[2], n=33)
    elif change == "delete entry":
        del lines[2]
    elif change == "reorder entries":
        lines[2], lines[3] = lines[3], lines[2]
    elif change == "insert entry":
        forged = json.loads(lines[3])
        forged.update(signature=None, actor={"name": "mallory", "key": None})
        forged["prev"] = sha256_of(lines[2].rstrip(b"\n"))
        lines.insert(3, canonical(forged) + b"\n")
    elif change == "edit last entry":
        lines[5] = edit(lines[5], n=66)
    elif change == "resign with another key":
        other = Signer(load_private_key(_other_key(tmp_path), None))
        entry = json.loads(lines[2])
        entry["details"]["n"] = 33
        entry["actor"]["key"] = other.fingerprint
        from archive.custody.entry import body_hash
        entry["signature"] = other.sign(body_hash({k: v for k, v in entry.items() if k != "signature"}),
                                        entry["time"])
        lines[2] = canonical(entry) + b"\n"
    write_lines(ledger, lines)
    trusted = {signer.fingerprint: "alice"}
    report = check_chain(ledger.records(), ledger.location, trusted)
    assert report.breaks, f"{change} was not detected"
    found = report.breaks[0]
    assert found.where == where and message in found.message, report.breaks


def _other_key(tmp_path):
    from archive.keys import generate
    return generate(tmp_path / "other", None).private


def test_an_interrupted_write_is_named_set_aside_and_the_ledger_goes_on(tmp_path, signer):
    ledger = file_ledger(tmp_path, signer, count=3)
    with open(ledger.path, "ab") as fh:
        fh.write(b'{"seq":4,"time":"20')          # a crash in the middle of a line
    report = check_chain(ledger.records(), ledger.location)
    assert report.intact and report.head["seq"] == 3, report      # never `head: None`
    assert "line 4: an incomplete last line" in report.notes[0] and "custody repair" in report.notes[0]
    append(ledger, Actor("alice", signer), 4)
    records = ledger.records()
    assert [r.entry["seq"] for r in records] == [1, 2, 3, 4]
    assert records[3].entry["prev"] == sha256_of(records[2].raw)   # chained to the last whole entry
    assert check_chain(records, ledger.location).intact
    kept = list((ledger.path.parent / "torn").iterdir())
    assert [p.read_bytes() for p in kept] == [b'{"seq":4,"time":"20']   # set aside, never lost


def test_an_entry_naming_a_key_must_be_signed(tmp_path, signer):
    ledger = file_ledger(tmp_path, signer, count=2)
    lines = lines_of(ledger)
    entry = json.loads(lines[1])
    entry["signature"] = None
    lines[1] = canonical(entry) + b"\n"
    write_lines(ledger, lines)
    assert "carries no signature" in first_break(ledger).message


def test_object_ledger_changes_are_located_by_key(tmp_path, signer):
    store = LocalStore(tmp_path / "store")
    ledger = ObjectLedger(store)
    for n in range(1, 6):
        append(ledger, Actor("alice", signer), n)
    assert check_chain(ledger.records(), ledger.location).intact
    path = lambda seq: store.root / object_key(seq)   # noqa: E731
    two, three = path(2).read_bytes(), path(3).read_bytes()
    path(2).write_bytes(three)
    path(3).write_bytes(two)
    found = first_break(ledger)
    assert found.where == object_key(2) and "stored under the number of entry 2" in found.message
    path(2).write_bytes(two)
    path(3).unlink()
    found = first_break(ledger)
    assert found.where == object_key(4) and "entry 3 is missing" in found.message


def _ledger(kind: str, address: str):
    """The file ledger in a folder, or the object ledger of any store address (an
    s3:// address once the S3 store is merged: the same test then runs against S3)."""
    from archive.store.address import open_store
    return FileLedger(os.path.join(address, "ledger.jsonl")) if kind == "file" else ObjectLedger(open_store(address))


def _hammer(kind: str, address: str, writer: int, count: int) -> None:
    ledger = _ledger(kind, address)
    for n in range(count):
        append(ledger, Actor(f"writer-{writer}"), n)


def _concurrent_writers_keep_one_chain(kind: str, address: str, how: str) -> None:
    writers, count = 4, 12
    args = [(kind, address, w, count) for w in range(writers)]
    if how == "threads":
        workers = [threading.Thread(target=_hammer, args=a) for a in args]
    else:
        workers = [multiprocessing.get_context("spawn").Process(target=_hammer, args=a) for a in args]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert getattr(w, "exitcode", 0) == 0
    ledger = _ledger(kind, address)
    records = ledger.records()
    assert [r.entry["seq"] for r in records] == list(range(1, writers * count + 1))
    assert check_chain(records, ledger.location).intact
    per_writer = {}
    for r in records:
        per_writer.setdefault(r.entry["actor"]["name"], []).append(r.entry["details"]["n"])
    assert all(ns == list(range(count)) for ns in per_writer.values()) and len(per_writer) == writers


@pytest.mark.parametrize("kind", ["file", "objects"])
@pytest.mark.parametrize("how", ["threads", "processes"])
def test_concurrent_writers_never_fork_the_chain(tmp_path, kind, how):
    _concurrent_writers_keep_one_chain(kind, str(tmp_path), how)


@pytest.mark.parametrize("how", ["threads", "processes"])
def test_concurrent_writers_against_s3_never_fork_the_chain(s3, how):
    """Conditional writes on a real S3 endpoint (moto over HTTP): distinct sequence numbers."""
    _concurrent_writers_keep_one_chain("objects", s3.address("ledger"), how)


# -- the ledger of a real store ----------------------------------------------------------

def store_ledger(tmp_path) -> FileLedger:
    return FileLedger(tmp_path / "store" / "custody" / "ledger.jsonl")


def test_capture_records_captured_sealed_stored_signed_by_the_operator(capture, run, key, pubkey, tmp_path):
    wacz = capture("/")
    capture_id = wacz.name.removesuffix(".wacz")
    entries = [r.entry for r in store_ledger(tmp_path).records()]
    fp = fingerprint(load_public_key(pubkey))
    assert [e["event"] for e in entries] == ["captured", "sealed", "stored"]
    assert all(e["capture"] == capture_id and e["actor"]["key"] == fp and e["signature"] for e in entries)
    import hashlib
    assert entries[1]["wacz"] == entries[2]["wacz"] == hashlib.sha256(wacz.read_bytes()).hexdigest()

    shown = run("custody", "show", capture_id, "--store", tmp_path / "store")
    assert shown.code == 0 and [line.split()[2] for line in shown.out.splitlines()[:3]] == \
        ["captured", "sealed", "stored"]
    assert "log: 3 entries, signatures intact, 3 proven in the log under head 3:" in shown.out
    checked = run("custody", "verify", "--store", tmp_path / "store", "--trust", pubkey)
    assert checked.code == 0 and checked.out.startswith("INTACT: 3 entries"), checked
    as_json = json.loads(run("custody", "verify", "--store", tmp_path / "store", "--json").out)
    assert as_json["intact"] and as_json["signers"] == {fp: 3}


def test_verify_reports_custody_and_records_who_verified(capture, run, key, pubkey, tmp_path):
    wacz = capture("/")
    result = run("verify", wacz, "--trust", pubkey, "--json", "--operator", "investigator")
    report = json.loads(result.out)
    assert result.code == 0
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["custody"]["status"] == "pass"
    assert [e["event"] for e in report["custody"]] == ["captured", "sealed", "stored"]
    verified = store_ledger(tmp_path).records()[-1].entry
    assert verified["event"] == "verified" and verified["actor"] == {"name": "investigator", "key": None}
    assert verified["signature"] is None and verified["details"]["result"] == "VERIFIED"
    assert verified["details"]["trusted_keys"] == [fingerprint(load_public_key(pubkey))]
    assert verified["wacz"] == report["sha256"]

    assert run("verify", wacz, "--trust", pubkey, "--key", key).code == 0
    signed = store_ledger(tmp_path).records()[-1].entry
    assert signed["signature"] and signed["actor"]["key"] == fingerprint(load_public_key(pubkey))
    before = len(store_ledger(tmp_path).records())
    assert run("verify", wacz, "--trust", pubkey, "--no-record").code == 0
    assert len(store_ledger(tmp_path).records()) == before
    text = run("verify", wacz, "--trust", pubkey, "--no-record").out
    assert "custody history:" in text and "verified          investigator (UNSIGNED)" in text


def test_a_custody_history_rewritten_under_another_key_does_not_pass(capture, run, pubkey, tmp_path):
    """Anyone who can write to the store can write a consistent, signed chain of entries
    with a key of their own: the history passes only when signed by a key you trust."""
    from archive.custody.entry import make_entry
    from cryptography.hazmat.primitives.asymmetric import ec
    wacz = capture("/")
    ledger = store_ledger(tmp_path)
    entries = [r.entry for r in ledger.records()]
    shutil.rmtree(ledger.path.parent)             # the ledger, its tree and heads: all rewritten
    mallory = Actor("root", Signer(ec.generate_private_key(ec.SECP256R1())))
    for e in entries:
        ledger.append(lambda seq, prev, e=e: make_entry(seq, prev, e["event"], mallory, e["capture"],
                                                        e["wacz"], dict(e["details"], note="forged")))
    assert check_chain(ledger.records(), ledger.location).intact
    result = run("verify", wacz, "--trust", pubkey, "--json", "--no-record")
    checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
    assert result.code == 0 and checks["signature"]["status"] == "pass"
    assert checks["custody"]["status"] == "warn", checks["custody"]
    assert f"signed by key {mallory.key}, which is not among the keys you trust" in checks["custody"]["summary"]


def test_hostile_entries_appended_to_the_ledger_are_reported_never_a_crash(capture, run, pubkey, tmp_path):
    """Anyone able to write to the store can append a line: values of any type, numbers
    past 2**63, terminal escapes. Each command still gives its answer, on plain lines."""
    wacz = capture("/")
    capture_id = wacz.name.removesuffix(".wacz")
    ledger = store_ledger(tmp_path)
    base = {"seq": 4, "time": "2026-01-01T00:00:00Z", "event": "verified", "capture": capture_id,
            "wacz": None, "actor": {"name": "x", "key": None}, "details": {}, "prev": None, "signature": None}
    hostile = [
        {"seq": None, "event": ["stored"], "actor": {"name": "\x1b[8A\rVERIFIED", "key": 7}, "details": [1]},
        {"seq": 10 ** 30, "time": {"t": 1}, "wacz": 5, "actor": {"name": "y", "key": [1]}},
        {"event": "stored", "capture": [capture_id], "actor": "nobody"},
        {"event": "timestamped", "details": {"object": ["timestamps/x"]}, "signature": {"hash": 1}},
    ]
    deep = b"[" * 200_000 + b"]" * 200_000       # too deep for Python's JSON parser
    with open(ledger.path, "ab") as fh:
        for changes in hostile:
            fh.write(json.dumps({**base, **changes}).encode() + b"\n")
        fh.write(deep + b"\n")
    store = tmp_path / "store"
    (store / "timestamps" / capture_id).mkdir(parents=True)
    (store / "timestamps" / capture_id / "1.json").write_bytes(deep)
    for args, code in ((("custody", "show"), 0), (("custody", "show", capture_id), 0),
                       (("custody", "verify"), 1), (("custody", "verify", "--json"), 1),
                       (("verify", capture_id, "--trust", pubkey, "--no-record"), 1),
                       (("verify", capture_id, "--trust", pubkey, "--no-record", "--json"), 1)):
        result = run(*args, "--store", store)
        assert result.code == code and not result.err, (args, result)
        assert "\x1b" not in result.out and "\rVERIFIED" not in result.out, (args, result)
    report = json.loads(run("verify", capture_id, "--store", store, "--trust", pubkey, "--no-record", "--json").out)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["custody"]["status"] == "fail" and checks["signature"]["status"] == "pass"
    assert checks["timestamps"]["status"] == "fail"
    assert all(e["seq"] is None or isinstance(e["seq"], int) for e in report["custody"])


def test_a_replaced_file_contradicts_its_custody(capture, run, pubkey, tmp_path):
    first, second = capture("/"), capture("/about")
    os.chmod(first, 0o644)
    shutil.copyfile(second, first)        # a validly signed capture, but not the one stored here
    result = run("verify", first, "--trust", pubkey, "--json", "--no-record")
    checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
    assert result.code == 1 and checks["custody"]["status"] == "fail"
    messages = [p["message"] for p in checks["custody"]["problems"]]
    assert any("not the file that was stored" in m for m in messages)
    assert any("not the file that was sealed" in m for m in messages)
    assert checks["signature"]["status"] == "pass"


def test_another_signed_capture_in_the_place_of_one_without_custody_entries_does_not_verify(
        capture, run, pubkey, tmp_path):
    """Nothing in the ledger to contradict it (its entries cut, or a store without a
    ledger): the file itself names the capture it is, under the signature."""
    first, second = capture("/"), capture("/about")
    (tmp_path / "store" / "custody" / "ledger.jsonl").unlink()
    os.chmod(first, 0o644)
    shutil.copyfile(second, first)
    first_id, second_id = first.name.removesuffix(".wacz"), second.name.removesuffix(".wacz")
    for target in (first, first_id):
        result = run("verify", target, "--store", tmp_path / "store", "--trust", pubkey, "--json", "--no-record")
        report = json.loads(result.out)
        checks = {c["name"]: c for c in report["checks"]}
        assert result.code == 1 and checks["capture-id"]["status"] == "fail", checks
        assert f"says it is capture {second_id}" in checks["capture-id"]["summary"]
        assert checks["signature"]["status"] == "pass" and checks["custody"]["status"] == "warn"
    result = run("verify", second_id, "--store", tmp_path / "store", "--trust", pubkey, "--json", "--no-record")
    checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
    assert result.code == 0 and checks["capture-id"]["status"] == "pass"
    # nor does a bare WARC (its records intact) or any file (matching --sha256) pass there
    with zipfile.ZipFile(second) as zf:
        warc = next(n for n in zf.namelist() if n.startswith("archive/"))
        first.write_bytes(zf.read(warc))
    result = run("verify", first_id, "--store", tmp_path / "store", "--trust", pubkey, "--json", "--no-record")
    report = json.loads(result.out)
    assert result.code == 1 and report["kind"] == "warc" and "is not a WACZ" in report["reason"], report["reason"]
    first.write_bytes(b"any file\n")
    result = run("verify", first_id, "--store", tmp_path / "store", "--json", "--no-record",
                 "--sha256", hashlib.sha256(b"any file\n").hexdigest())
    assert result.code == 1 and "is not a WACZ" in json.loads(result.out)["reason"]
    # a file outside a store names no place to hold it to
    outside = shutil.copyfile(second, tmp_path / f"{first_id}.wacz")
    result = run("verify", outside, "--trust", pubkey, "--json", "--no-record")
    assert result.code == 0 and "capture-id" not in {c["name"] for c in json.loads(result.out)["checks"]}


def test_removed_last_entry_shows_as_a_capture_the_ledger_does_not_account_for(capture, run, tmp_path):
    wacz = capture("/")
    ledger = store_ledger(tmp_path)
    write_lines(ledger, lines_of(ledger)[:-1])       # drop the 'stored' entry
    result = run("custody", "verify", "--store", tmp_path / "store")
    assert result.code == 1 and result.out.startswith("BROKEN")
    assert f"capture {wacz.name.removesuffix('.wacz')} is in the store, but no 'stored' entry" in result.out


def test_removed_tokens_contradict_the_custody_record(capture, tsa, run, pubkey, tmp_path):
    wacz = capture("/", extra=("--tsa", tsa.url))
    with zipfile.ZipFile(wacz) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    digest = json.loads(parts["datapackage-digest.json"])
    del digest["timestamps"]
    os.chmod(wacz, 0o644)
    with zipfile.ZipFile(wacz, "w") as zf:
        for name, body in parts.items():
            zf.writestr(name, json.dumps(digest).encode() if name == "datapackage-digest.json" else body)
    result = run("verify", wacz, "--trust", pubkey, "--json", "--no-record")
    checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
    assert result.code == 1
    assert any("tokens were removed" in p["message"] for p in checks["custody"]["problems"])


def test_a_ledger_that_cannot_be_written_never_costs_the_capture(run, key, site, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "custody").write_text("not a folder")     # the ledger cannot be created
    result = run("capture", site.url("/"), "--key", key, "--store", store, "--work-dir",
                 tmp_path / "work", "--quiet")
    assert result.code == 2 and "is stored, but its custody is incomplete" in result.err
    assert result.err.count("\n") == 1
    assert len(list(store.glob("captures/*/*/*/*.wacz"))) == 1


def test_an_anchor_noted_earlier_catches_entries_cut_from_the_end(capture, run, tmp_path):
    capture("/")
    store = tmp_path / "store"
    head = run("custody", "verify", "--store", store).out.split("head: ")[1].split()[0]
    assert head.startswith("3:")
    assert run("custody", "verify", "--store", store, "--anchor", head).code == 0
    ledger = store_ledger(tmp_path)
    entries = [r.entry for r in ledger.records()]

    def rewrite(kept, extra=()):
        """Whoever can write to the store rewrites the whole log, tree and heads included."""
        shutil.rmtree(ledger.path.parent)
        for e in kept:
            ledger.append(lambda seq, prev, e=e: dict(e, seq=seq, prev=prev))
        for actor in extra:
            append(ledger, actor, 0, event="stored")

    rewrite(entries[:-1], [Actor("mallory")])          # another entry in the last one's place
    result = run("custody", "verify", "--store", store, "--anchor", head)
    assert result.code == 1 and "is not the one you noted" in result.out, result
    rewrite(entries[:-1])
    result = run("custody", "verify", "--store", store, "--anchor", head)
    assert result.code == 1 and "the log ends at entry 2, before the head you noted" in result.out
    shutil.rmtree(ledger.path.parent / "tree")         # or the log is made a plain chain again
    result = run("custody", "verify", "--store", store, "--anchor", head)
    assert result.code == 1 and "has no tree" in result.out, result
    bad = run("custody", "verify", "--store", store, "--anchor", "nonsense")
    assert bad.code == 2 and bad.err.count("\n") == 1


def test_an_entry_anchor_of_a_plain_chain_catches_entries_cut_from_the_end(tmp_path, signer, run):
    """A ledger written before the log (a plain hash chain) keeps its SEQ:sha256 anchors."""
    ledger = file_ledger(tmp_path / "store", signer, count=3)
    shutil.rmtree(ledger.path.parent / "tree")
    (ledger.path.parent / "heads.jsonl").unlink()
    head = run("custody", "verify", "--store", tmp_path / "store").out.split("head: ")[1].split()[0]
    assert head.startswith("3:sha256:")
    lines = lines_of(ledger)
    write_lines(ledger, lines[:-1])
    append(ledger, Actor("mallory"), 0, event="stored")
    result = run("custody", "verify", "--store", tmp_path / "store", "--anchor", head)
    assert result.code == 1 and "differs from the anchored entry" in result.out
    write_lines(ledger, lines[:-1])
    result = run("custody", "verify", "--store", tmp_path / "store", "--anchor", head)
    assert result.code == 1 and "the anchored entry is gone" in result.out


def test_an_unreadable_ledger_does_not_stop_verification(capture, run, pubkey, tmp_path):
    wacz = capture("/")
    ledger = store_ledger(tmp_path).path
    ledger.unlink()
    ledger.mkdir()                       # a hostile or broken store layout
    result = run("verify", wacz, "--trust", pubkey)
    assert result.code == 0, result
    assert "[warn] custody: the custody ledger cannot be read" in result.out
    assert "could not record 'verified'" in result.err and result.err.count("\n") == 1


def test_a_capture_the_ledger_never_recorded_stored_does_not_pass_custody(capture, run, pubkey, tmp_path):
    wacz = capture("/")
    ledger = store_ledger(tmp_path)
    shutil.rmtree(ledger.path.parent)   # a file put into the store by hand: no captured/sealed/stored
    for _ in range(2):              # the first verification writes a 'verified' entry
        result = run("verify", wacz, "--trust", pubkey, "--json")
        checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
        assert result.code == 0 and checks["custody"]["status"] == "warn", checks["custody"]
    assert "no 'stored' entry" in checks["custody"]["summary"]


def test_a_file_outside_its_store_says_its_custody_was_not_read(capture, run, pubkey, tmp_path):
    copy = tmp_path / "copy.wacz"
    shutil.copyfile(capture("/"), copy)
    result = run("verify", copy, "--trust", pubkey)
    assert result.code == 0 and "custody history:" not in result.out
    assert "custody: this file is not at its place in a store, so no custody ledger was read" in result.out


def test_custody_commands_refuse_a_store_that_is_not_there(capture, run, tmp_path):
    wacz = capture("/")
    for action in ("show", "verify"):      # a mistyped folder is not an INTACT, empty ledger
        for store in (tmp_path / "no-such-store", wacz):
            result = run("custody", action, "--store", store)
            assert result.code == 2 and result.err.count("\n") == 1 and "internal" not in result.err, result
    ledger = store_ledger(tmp_path).path
    ledger.unlink()
    ledger.mkdir()
    result = run("custody", "verify", "--store", tmp_path / "store")
    assert result.code == 2 and "cannot read the custody ledger" in result.err and "internal" not in result.err


def test_a_removed_later_token_contradicts_the_custody_record(capture, tsa, tsa_ca, run, pubkey, tmp_path):
    wacz = capture("/")
    capture_id, store = wacz.name.removesuffix(".wacz"), tmp_path / "store"
    assert run("timestamp", capture_id, "--store", store, "--tsa", tsa.url).code == 0
    token = store / "timestamps" / capture_id / "1.json"
    token.unlink()                      # the only trusted time, gone from beside the capture
    result = run("verify", wacz, "--trust", pubkey, "--trust-tsa", tsa_ca, "--json", "--no-record")
    checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
    assert result.code == 1 and checks["custody"]["status"] == "fail"
    assert any(f"timestamps/{capture_id}/1.json, but the store no longer holds it" in p["message"]
               for p in checks["custody"]["problems"])
    checked = run("custody", "verify", "--store", store)
    assert checked.code == 1 and f"timestamp token timestamps/{capture_id}/1.json, but the store " \
        "does not hold it" in checked.out


def test_an_edit_of_an_unsigned_last_entry_shows_in_the_log(capture, run, pubkey, tmp_path):
    """No signature covers the unsigned 'verified' entries after the last signed one; the
    log's tree and heads do (a plain chain could only show it against an anchor)."""
    capture("/")                                   # captured, sealed, stored: signed
    store = tmp_path / "store"
    result = run("custody", "verify", "--store", store, "--json")
    assert json.loads(result.out)["unprotected"] == []
    for _ in range(2):                             # two unsigned 'verified' entries at the end
        assert run("verify", stored_waczs(store)[0], "--trust", pubkey).code == 0
    lines = lines_of(store_ledger(tmp_path))
    entry = json.loads(lines[-1])
    entry["details"]["result"] = "FORGED"
    lines[-1] = canonical(entry) + b"\n"
    write_lines(store_ledger(tmp_path), lines)
    result = run("custody", "verify", "--store", store)
    assert result.code == 1 and "level 0 differs from the one the entries give" in result.out, result
    assert "does not match the entries up to it" in result.out


def test_files_reads_every_stored_capture_against_the_hash_recorded_when_it_was_stored(capture, run, tmp_path):
    """A fixity check of the whole store: the ledger's chain alone holds when a stored
    file is damaged on disk (or replaced by someone who can write to the store)."""
    first, second = capture("/"), capture("/about")
    store = tmp_path / "store"
    plain = run("custody", "verify", "--store", store)
    intact = run("custody", "verify", "--store", store, "--files")
    assert plain.code == intact.code == 0, intact
    assert "every capture's bytes hash as recorded when stored (2 read" in intact.out
    report = json.loads(run("custody", "verify", "--store", store, "--files", "--json").out)
    assert report["files"]["checked"] == 2 and report["files"]["problems"] == []
    assert report["files"]["bytes"] == first.stat().st_size + second.stat().st_size

    os.chmod(second, 0o644)
    data = bytearray(second.read_bytes())
    data[len(data) // 2] ^= 0x01                     # one bit rots on the disk
    second.write_bytes(bytes(data))
    assert run("custody", "verify", "--store", store).code == 0, "the ledger alone cannot see it"
    damaged = run("custody", "verify", "--store", store, "--files")
    assert damaged.code == 1 and damaged.out.startswith("BROKEN")
    second_id = second.name.removesuffix(".wacz")
    assert f"capture {second_id} now hashes to" in damaged.out and "altered or damaged since" in damaged.out
    assert first.name.removesuffix(".wacz") not in damaged.out


def test_the_fixity_check_holds_to_the_first_signed_stored_hash(capture, run, pubkey, tmp_path):
    """Whoever can write to the store replaces a capture and appends a 'stored' entry
    with the new hash: the first signed 'stored' entry still decides (issue 18 item 1)."""
    first, second = capture("/"), capture("/about")
    store, first_id = tmp_path / "store", first.name.removesuffix(".wacz")
    os.chmod(first, 0o644)
    shutil.copyfile(second, first)
    forged = hashlib.sha256(first.read_bytes()).hexdigest()
    log = CustodyLog(LocalStore(store), Actor("mallory"))
    assert log.record("stored", first_id, forged) is not None
    result = run("custody", "verify", "--store", store, "--files")
    assert result.code == 1 and result.out.startswith("BROKEN"), result
    assert f"records capture {first_id} as stored with SHA-256 {forged}, but entry 3 recorded" in result.out
    assert f"capture {first_id} now hashes to {forged}" in result.out

    from archive.keys import generate
    other = Signer(load_private_key(generate(tmp_path / "other", None).private, None))
    CustodyLog(LocalStore(store), Actor("mallory", other)).record("stored", "20250101T000000Z-00000001", "ab" * 32)
    result = run("custody", "verify", "--store", store, "--files", "--trust", pubkey, "--json")
    problems = json.loads(result.out)["files"]["problems"]
    assert any("no 'stored' entry signed by a key you trust establishes the SHA-256 of capture "
               "20250101T000000Z-00000001" in p for p in problems), problems


def test_verify_holds_the_log_to_a_head_noted_earlier(capture, run, pubkey, tmp_path):
    wacz = capture("/")
    store = tmp_path / "store"
    head = run("custody", "verify", "--store", store).out.split("head: ")[1].split()[0]
    assert run("verify", wacz, "--trust", pubkey).code == 0             # the log grows
    result = run("verify", wacz, "--trust", pubkey, "--anchor", head, "--no-record")
    assert result.code == 0, result
    size = head.split(":")[0]
    forged = f"{size}:{'ab' * 32}"                                        # a head this log never had
    result = run("verify", wacz, "--trust", pubkey, "--anchor", forged, "--no-record", "--json")
    checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
    assert result.code == 1 and checks["custody"]["status"] == "fail"
    assert any("contradicts the head you noted" in p["message"] for p in checks["custody"]["problems"])
    bad = run("verify", wacz, "--anchor", "nonsense")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "not a tree head" in bad.err
