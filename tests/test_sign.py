import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from archive.seal.sign import check_signature, der_to_raw, sign_hash

CURVES = [ec.SECP384R1, ec.SECP256R1]
HASH = "sha256:" + "0" * 64


@pytest.mark.parametrize("curve", CURVES)
def test_every_bit_flip_of_the_embedded_public_key_is_refused_without_a_crash(curve):
    key = ec.generate_private_key(curve())
    signed = sign_hash(key, HASH, "2026-01-01T00:00:00Z")
    assert check_signature(signed).valid
    der = base64.b64decode(signed["publicKey"])
    for i in range(len(der)):
        for bit in range(8):
            flipped = bytearray(der)
            flipped[i] ^= 1 << bit
            result = check_signature(dict(signed, publicKey=base64.b64encode(bytes(flipped)).decode()))
            assert not result.valid, (i, bit)


@pytest.mark.parametrize("curve", CURVES)
def test_signature_over_another_hash_is_refused(curve):
    key = ec.generate_private_key(curve())
    signed = sign_hash(key, HASH, "2026-01-01T00:00:00Z")
    assert not check_signature(dict(signed, hash="sha256:" + "1" * 64)).valid


@pytest.mark.parametrize("curve,name,size", [(ec.SECP384R1, "P-384", 96), (ec.SECP256R1, "P-256", 64)])
def test_signatures_are_written_raw_and_both_encodings_verify(curve, name, size):
    """Raw r||s (IEEE P1363) is what WebCrypto (ReplayWeb.page) verifies; DER is what
    captures sealed before hold, and what openssl and most libraries write."""
    key = ec.generate_private_key(curve())
    signed = sign_hash(key, HASH, "2026-01-01T00:00:00Z")
    raw = base64.b64decode(signed["signature"])
    assert len(raw) == size
    check = check_signature(signed)
    assert (check.valid, check.curve, check.encoding) == (True, name, "raw")
    der = key.sign(HASH.encode(), ec.ECDSA(hashes.SHA256()))
    as_der = check_signature(dict(signed, signature=base64.b64encode(der).decode()))
    assert (as_der.valid, as_der.curve, as_der.encoding) == (True, name, "DER")
    # the raw form of a DER signature verifies too (r and s padded to the curve's size)
    again = check_signature(dict(signed, signature=base64.b64encode(der_to_raw(der, key.curve)).decode()))
    assert (again.valid, again.encoding) == (True, "raw")
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        result = check_signature(dict(signed, signature=base64.b64encode(bytes(flipped)).decode()))
        assert not result.valid and result.problem, i


def test_a_signature_of_the_wrong_length_is_refused_with_its_reason():
    key = ec.generate_private_key(ec.SECP384R1())
    signed = sign_hash(key, HASH, "2026-01-01T00:00:00Z")
    short = base64.b64encode(base64.b64decode(signed["signature"])[:-1]).decode()
    result = check_signature(dict(signed, signature=short))
    assert not result.valid and "neither DER nor a raw P-384" in result.problem
