"""One reader of a capture's self-description (archive.wacz.claims): what is required is
there and an object, what is optional is {} when absent or not an object, nothing is
read without a bound."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from archive.wacz.claims import read_claims
from archive.wacz.names import CAPTURE, DATAPACKAGE, DIGEST


def _zip(members: dict[str, bytes]) -> zipfile.ZipFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return zipfile.ZipFile(io.BytesIO(buf.getvalue()))


WHOLE = {
    DATAPACKAGE: json.dumps({"created": "2026-12-07T10:00:00Z", "title": "t"}).encode(),
    DIGEST: json.dumps({"hash": "sha256:ab", "signedData": {"publicKey": "KEY"}}).encode(),
    CAPTURE: json.dumps({"captureId": "20261207T100000Z-0a1b2c3d", "seeds": ["http://x/"],
                         "signer": "fp", "operator": "op", "stats": {"pages": 1}}).encode(),
}


def test_a_whole_capture_says_what_it_is():
    claims = read_claims(_zip(WHOLE))
    assert (claims.capture_id, claims.created, claims.seeds, claims.signer) == \
        ("20261207T100000Z-0a1b2c3d", "2026-12-07T10:00:00Z", ["http://x/"], "fp")
    assert claims.datapackage_hash == "sha256:ab" and claims.signed_data == {"publicKey": "KEY"}
    assert claims.description() == {"created": "2026-12-07T10:00:00Z", "title": "t", "seeds": ["http://x/"],
                                     "operator": "op", "signer": "fp", "stats": {"pages": 1}}


def test_only_what_is_asked_is_read():
    claims = read_claims(_zip(WHOLE), required=(CAPTURE,), optional=())
    assert claims.datapackage == {} and claims.digest == {} and claims.seeds == ["http://x/"]


@pytest.mark.parametrize("members, required, error", [
    ({DATAPACKAGE: b"{}"}, (CAPTURE,), KeyError),                       # missing
    ({**WHOLE, CAPTURE: b"[1, 2]"}, (CAPTURE,), ValueError),            # not an object
    ({**WHOLE, DIGEST: b"{not json"}, (DIGEST,), ValueError),           # not JSON
    ({**WHOLE, DATAPACKAGE: b"[" * 100_000 + b"]" * 100_000}, (DATAPACKAGE,), ValueError),  # too deep
])
def test_a_required_claim_that_cannot_be_read_is_an_error(members, required, error):
    with pytest.raises(error):
        read_claims(_zip(members), required=required)


def test_an_optional_claim_that_is_absent_or_not_an_object_is_empty():
    claims = read_claims(_zip({DATAPACKAGE: b'"just a string"', DIGEST: b"{}"}))
    assert claims.datapackage == {} and claims.evidence == {} and claims.seeds is None


def test_a_claim_larger_than_its_bound_is_refused():
    with pytest.raises(ValueError, match="larger than"):
        read_claims(_zip({**WHOLE, CAPTURE: b'{"x": "' + b"a" * 2000 + b'"}'}), limit=1000)
