"""Smaller faults: a capture id taken, junk in a capture's place, a warning under a pass,
a store's own keys folder given as trusted."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import stored_waczs


def test_a_capture_whose_name_is_taken_says_how_to_store_it_elsewhere(run, key, site, tmp_path):
    result = run("capture", site.url("/"), "--key", key, "--store", tmp_path / "one", "--work-dir",
                 tmp_path / "work", "--keep-local", "--json", "--quiet")
    assert result.code == 0, result
    summary = json.loads(result.out)
    work, capture_id = Path(summary["work_dir"]), summary["capture_id"]
    # another store where the id already holds something else
    taken = tmp_path / "two" / Path(summary["address"]).relative_to(tmp_path / "one")
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"not this capture")
    # the work folder remembers its store: another one is taken only with --override-saved
    result = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "two", "--override-saved",
                 "--quiet")
    assert result.code == 2 and result.err.count("\n") == 1, result
    assert "already exists" in result.err
    hint = f"`archive capture --resume {work} --store ANOTHER-STORE --override-saved`"
    assert hint in result.err
    result = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "three", "--override-saved",
                 "--quiet")
    assert result.code == 0, result
    assert [Path(p).name for p in stored_waczs(tmp_path / "three")] == [f"{capture_id}.wacz"]


def test_junk_in_a_captures_place_is_not_verified(run, capture, tmp_path, pubkey):
    wacz = capture()
    capture_id = wacz.name.removesuffix(".wacz")
    os.chmod(wacz, 0o644)
    wacz.write_bytes(b"junk " * 300)
    result = run("verify", capture_id, "--store", tmp_path / "store", "--trust", pubkey, "--json",
                 "--no-record")
    assert result.code == 1, result
    report = json.loads(result.out)
    assert report["verdict"] == "NOT VERIFIED"
    assert "is not a WACZ" in report["reason"]


def test_a_pass_with_warnings_says_so_and_a_stores_own_keys_are_not_trust(run, capture, tmp_path, pubkey):
    wacz = capture()
    result = run("verify", wacz, "--trust", pubkey, "--no-record")
    assert result.code == 0 and "[warn]" in result.out, result
    verdict = result.out.splitlines()[0]
    assert verdict.startswith("VERIFIED") and "every check passed, with 1 warning to read" in verdict, verdict
    keys = tmp_path / "store" / "keys"
    assert any(keys.iterdir())
    for trust in (keys, next(keys.iterdir())):
        result = run("verify", wacz, "--trust", trust, "--no-record", "--json")
        assert result.code == 0, result
        assert "keys folder of the store" in result.err and result.err.count("\n") == 1
        assert any("keys folder of the store" in note for note in json.loads(result.out)["notes"])
    assert "keys folder" not in run("verify", wacz, "--trust", pubkey, "--no-record").err


def test_read_only_credentials_say_what_was_not_recorded(run, key, site, s3, s3_proxy, tmp_path):
    """Credentials that may read but not write: the capture is not stored, and the
    error also says that its 'captured' and 'sealed' entries could not be recorded."""
    from tests.s3server import s3_error

    def read_only(exchange):
        return s3_error("AccessDenied", 403) if exchange.method in ("PUT", "POST", "DELETE") else None
    s3_proxy.on_request = read_only
    result = run("capture", site.url("/"), "--key", key, "--store", s3.address("team"),
                 "--work-dir", tmp_path / "work", "--quiet")
    assert result.code == 2 and result.err.count("\n") == 1, result
    assert "was not stored" in result.err and "--resume" in result.err
    assert "could not record" in result.err and "captured" in result.err and "sealed" in result.err
