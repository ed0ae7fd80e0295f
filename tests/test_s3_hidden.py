"""S3 delete markers: deleting without a version id is allowed even under COMPLIANCE
Object Lock, and hides an object from plain listings and reads. A store read sees
versions: a capture or ledger entry behind a delete marker is reported, and still read
(issue 18 item 4)."""

import json

from tests.test_s3_cli import capture_to_s3


def test_a_capture_and_ledger_entries_behind_delete_markers_are_reported_and_still_read(
        run, key, pubkey, site, s3, tmp_path):
    store = s3.address("ev")
    result = capture_to_s3(run, key, site, tmp_path, store, "--retain-days", "1", "--lock-mode", "COMPLIANCE")
    assert result.code == 0, result
    out = json.loads(result.out)
    capture_id, wacz_key = out["capture_id"], out["address"].split("/", 3)[3]
    for hidden in (wacz_key, "ev/custody/000000000003.json"):
        s3.client.delete_object(Bucket=s3.bucket, Key=hidden)        # no version id: a delete marker
    assert wacz_key not in s3.keys()

    listed = run("ls", store, "--json")
    [row] = json.loads(listed.out)
    assert listed.code == 0 and row["id"] == capture_id and "delete marker" in row["warning"], listed
    assert "HIDDEN: hidden behind a delete marker" in run("ls", store).out
    shown = run("show", capture_id, "--store", store)
    assert shown.code == 0 and "delete marker" in shown.out, shown

    verified = run("verify", capture_id, "--store", store, "--trust", pubkey, "--no-record")
    assert verified.code == 0 and "hidden behind a delete marker" in verified.out, verified

    checked = run("custody", "verify", "--store", store)
    assert checked.code == 1 and "custody/000000000003.json" in checked.out, checked
    assert "hidden behind a delete marker" in checked.out

    empty = run("custody", "verify", "--store", s3.address("nothing-here"))
    assert empty.code == 2 and f"{s3.address('nothing-here')} is not a store: nothing is stored under it" in empty.err, empty


def test_ls_newest_reads_only_the_newest_date_folders(run, s3, tmp_path):
    """`ls --newest N` walks the date folders newest first (folder and S3 stores)."""
    import os
    ids = [f"2024{m:02d}{d:02d}T000000Z-0000000{n}" for n, (m, d) in enumerate([(1, 5), (3, 1), (3, 9), (11, 30)])]
    folder = tmp_path / "store"
    for capture_id in ids:
        day = folder / "captures" / "2024" / capture_id[4:6] / capture_id[6:8]
        day.mkdir(parents=True, exist_ok=True)
        (day / f"{capture_id}.wacz").write_bytes(b"x")
        s3.client.put_object(Bucket=s3.bucket, Key=f"st/captures/2024/{capture_id[4:6]}/{capture_id[6:8]}/"
                             f"{capture_id}.wacz", Body=b"x", Metadata={"sha256": "ab" * 32})
    os.makedirs(folder / "captures" / "2023" / "01" / "01")       # an empty folder is passed over
    for store in (folder, s3.address("st")):
        listed = run("ls", store, "--newest", "2", "--json")
        assert listed.code == 0, listed
        assert [r["id"] for r in json.loads(listed.out)] == ids[-2:], (store, listed)
        assert [r["id"] for r in json.loads(run("ls", store, "--json").out)] == ids
