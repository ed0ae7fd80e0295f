"""The signature of a capture as files an investigator checks with openssl alone: the
exact bytes signed, the signer's public key (PEM) and the signature in DER.

What is signed is the ASCII text `sha256:<hex>` of datapackage.json (the anonymous form
of Webrecorder's signing spec, archive.seal.sign); datapackage.json is written beside
it, so that its SHA-256 can be compared with that text.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from archive.errors import ArchiveError
from archive.files import write_new_files
from archive.keys import curve_name, fingerprint, public_key_from_b64, public_pem
from archive.seal.sign import check_signature, signature_forms
from archive.timestamping import SealedDigest


@dataclass(frozen=True)
class SignatureFiles:
    signed: Path            # the exact bytes signed
    public_key: Path        # PEM
    signature: Path         # DER
    datapackage: Path       # whose SHA-256 the signed text names
    fingerprint: str        # of the public key (compare it with the key you trust)
    curve: str
    encoding: str           # how the capture holds the signature: raw or DER

    def openssl_command(self) -> str:
        return (f"openssl dgst -sha256 -verify {self.public_key} -signature {self.signature} "
                f"{self.signed}")


def export_signature(sealed: SealedDigest, name: str, out_dir: Path) -> SignatureFiles:
    """Write `<name>.signed.txt`, `<name>.pub.pem`, `<name>.sig.der` and
    `<name>.datapackage.json` into out_dir; existing files are never replaced. A signature
    that does not hold is refused (there is nothing to hand over but `archive verify`'s
    report)."""
    signed = sealed.digest.get("signedData")
    if not isinstance(signed, dict):
        raise ArchiveError(f"{name} is not signed")
    check = check_signature(signed)
    if check.form != "anonymous":
        raise ArchiveError(f"{name} carries a {check.form} signature; only the anonymous form "
                           "(a signer's key) can be written out")
    if not check.valid:
        raise ArchiveError(f"{name}: its signature does not hold ({check.problem}); run `archive verify`")
    if signed.get("hash") != sealed.digest.get("hash"):
        raise ArchiveError(f"{name}: its signature covers another datapackage.json; run `archive verify`")
    key = public_key_from_b64(signed["publicKey"])
    der, encoding = next((d, e) for d, e in signature_forms(base64.b64decode(signed["signature"]), key.curve)
                         if e == check.encoding)
    out = SignatureFiles(
        out_dir / f"{name}.signed.txt", out_dir / f"{name}.pub.pem", out_dir / f"{name}.sig.der",
        out_dir / f"{name}.datapackage.json", fingerprint(key), curve_name(key), encoding,
    )
    files = [(out.signed, str(signed["hash"]).encode("ascii")), (out.public_key, public_pem(key)),
             (out.signature, der), (out.datapackage, sealed.datapackage)]
    write_new_files(out_dir, files)
    return out
