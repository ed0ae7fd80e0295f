import hashlib
import os
import stat
import subprocess

from cryptography.hazmat.primitives import serialization

from tests.conftest import PASSPHRASE, tool


def test_generate_writes_encrypted_private_key_with_mode_0600(run, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", "s3cret")
    result = run("keys", "generate", "--out", tmp_path / "k", "--json")
    assert result.code == 0, result
    private = tmp_path / "k" / "signing-key.pem"
    public = tmp_path / "k" / "signing-key.pub.pem"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in private.read_bytes()
    key = serialization.load_pem_private_key(private.read_bytes(), b"s3cret")
    der = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert hashlib.sha256(der).hexdigest() in result.out
    # P-384 by default: ReplayWeb.page imports the signer's key as P-384 only
    assert key.curve.name == "secp384r1" and "P-384" in result.out


def test_generate_offers_p256_for_keys_like_the_old_ones(run, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", "s3cret")
    result = run("keys", "generate", "--out", tmp_path, "--curve", "p256")
    assert result.code == 0 and "P-256" in result.out, result
    key = serialization.load_pem_private_key((tmp_path / "signing-key.pem").read_bytes(), b"s3cret")
    assert key.curve.name == "secp256r1"
    shown = run("keys", "show", tmp_path / "signing-key.pub.pem", "--json")
    assert '"ECDSA P-256 (secp256r1) with SHA-256"' in shown.out


def test_generate_refuses_unencrypted_key_without_flag(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ARCHIVE_KEY_PASSPHRASE"}
    proc = subprocess.run([tool("archive"), "keys", "generate", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert "--no-passphrase" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())


def test_no_passphrase_flag_writes_plain_key(run, tmp_path, monkeypatch):
    monkeypatch.delenv("ARCHIVE_KEY_PASSPHRASE", raising=False)
    assert run("keys", "generate", "--out", tmp_path, "--no-passphrase").code == 0
    assert b"ENCRYPTED" not in (tmp_path / "signing-key.pem").read_bytes()


def test_generate_never_overwrites(run, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", "x")
    assert run("keys", "generate", "--out", tmp_path).code == 0
    before = (tmp_path / "signing-key.pem").read_bytes()
    result = run("keys", "generate", "--out", tmp_path)
    assert result.code == 2 and "refusing to overwrite" in result.err
    assert (tmp_path / "signing-key.pem").read_bytes() == before


def test_show_prints_fingerprint_and_algorithm(run, keydir, monkeypatch):
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
    public = run("keys", "show", keydir / "signing-key.pub.pem")
    private = run("keys", "show", keydir / "signing-key.pem")
    assert public.code == private.code == 0
    fp = public.out.split()[1]
    assert len(fp) == 64 and fp in private.out
    assert "P-384" in public.out


def test_show_with_wrong_passphrase_is_one_line_error(run, keydir, monkeypatch):
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", "wrong")
    result = run("keys", "show", keydir / "signing-key.pem")
    assert result.code == 2
    assert "wrong passphrase" in result.err and result.err.count("\n") == 1


def test_a_key_file_holding_two_keys_is_refused_not_half_trusted(run, keydir, tmp_path, monkeypatch):
    """Only the first PEM block would be read: `--trust team.pem` with two keys in it
    trusted one of them, silently."""
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", "other")
    assert run("keys", "generate", "--out", tmp_path / "other").code == 0
    public = (keydir / "signing-key.pub.pem").read_bytes()
    bundle = tmp_path / "team.pem"
    bundle.write_bytes((tmp_path / "other" / "signing-key.pub.pem").read_bytes() + public)
    for args in (("verify", keydir / "signing-key.pub.pem", "--trust", bundle), ("keys", "show", bundle)):
        result = run(*args)
        assert result.code == 2 and "holds 2 PEM blocks" in result.err and result.err.count("\n") == 1, result
    commented = tmp_path / "alice.pem"
    commented.write_bytes(b"Alice's key, as published on her site:\n" + public)
    assert run("keys", "show", commented).out.split()[1] == run("keys", "show", keydir / "signing-key.pub.pem").out.split()[1]


def test_trust_takes_paths_that_hold_an_equals_sign(keydir, tmp_path):
    """`--trust [NAME=]PATH`: the name ends at the first "=", and a path may hold more;
    a whole argument that is a file or folder is a path, named by its file."""
    from archive.cli.common import trusted_keys
    from archive.keys import fingerprint, load_public_key

    folder = tmp_path / "team=2026"
    folder.mkdir()
    key = folder / "bob.pub.pem"
    key.write_bytes((keydir / "signing-key.pub.pem").read_bytes())
    fp = fingerprint(load_public_key(key))
    assert trusted_keys([f"alice={key}"]) == {fp: "alice"}
    assert trusted_keys([str(key)]) == {fp: "bob"}
    assert trusted_keys([str(folder)]) == {fp: "bob"}
    assert trusted_keys([f"team={folder}"]) == {fp: "team"}


def test_a_key_file_that_never_ends_is_refused_in_one_line(tmp_path):
    """`--trust /dev/zero` or `keys show` of a huge file was read whole into memory."""
    from tests.verifyhelp import archive_cmd
    target = tmp_path / "a.wacz"
    target.write_bytes(b"not read: the keys are read first")
    for args in (["keys", "show", "/dev/zero"], ["verify", target, "--trust", "/dev/zero"]):
        proc = archive_cmd(*args, limit_mb=512, timeout=60)
        assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, (args, proc.stderr)
        assert "larger than any key" in proc.stderr, (args, proc.stderr)
