import base64

from cryptography.hazmat.primitives.asymmetric import ec

from archive.seal.sign import check_signature, sign_hash


def test_every_bit_flip_of_the_embedded_public_key_is_refused_without_a_crash():
    key = ec.generate_private_key(ec.SECP256R1())
    signed = sign_hash(key, "sha256:" + "0" * 64, "2026-01-01T00:00:00Z")
    assert check_signature(signed).valid
    der = base64.b64decode(signed["publicKey"])
    for i in range(len(der)):
        for bit in range(8):
            flipped = bytearray(der)
            flipped[i] ^= 1 << bit
            result = check_signature(dict(signed, publicKey=base64.b64encode(bytes(flipped)).decode()))
            assert not result.valid, (i, bit)


def test_signature_over_another_hash_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    signed = sign_hash(key, "sha256:" + "0" * 64, "2026-01-01T00:00:00Z")
    assert not check_signature(dict(signed, hash="sha256:" + "1" * 64)).valid
