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
    assert empty.code == 2 and "no store at" in empty.err, empty
