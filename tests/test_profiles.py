"""Browser profiles (issue 25): made by a scripted login on a local site, encrypted at
rest, used by `capture --browser --profile` and `--media --profile`; no cookie or
local-storage value anywhere in the capture, the store or the ledger."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from archive.capture.browser import find_chromium
from archive.profiles.vault import PROFILE_NAME, save
from tests.conftest import PASSPHRASE, stored_waczs
from tests.profilesite import MEMBERS_TEXT, PASSWORD, USER, LoginSite, cookies_txt
from tests.site import SiteServer
from tests.warcs import pages, records

PROFILE_PASS = "profile passphrase for tests"
# served as an MP4 file: yt-dlp downloads a file named by <video src> as it is
VIDEO = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 40


def _chromium_or_skip() -> str:
    try:
        return find_chromium()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"needs Chromium: {exc}")


@pytest.fixture(scope="module")
def login_site():
    site = LoginSite(video=VIDEO)
    with SiteServer(site.site) as server:
        server.login = site
        yield server


def scripted_login(server) -> dict:
    """What a person does in `profile create`, done by Playwright: fill the login form,
    land on the welcome page (which keeps a token in local storage); the storage state."""
    from playwright.sync_api import sync_playwright
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium_or_skip(), headless=True,
                                     args=["--no-sandbox"] if root else [], chromium_sandbox=not root)
        try:
            page = browser.new_page()
            page.goto(server.url("/login"))
            page.fill("#user", USER)
            page.fill("#password", PASSWORD)
            page.click("#go")
            page.wait_for_selector("#hello")
            page.wait_for_function("() => localStorage.getItem('apiToken') !== null")
            return page.context.storage_state()
        finally:
            browser.close()


@pytest.fixture(scope="module")
def profile(login_site, tmp_path_factory) -> Path:
    """A profile made by a scripted login, saved through the code `profile create` uses."""
    folder = tmp_path_factory.mktemp("profiles") / "alice"
    save(folder, scripted_login(login_site), PROFILE_PASS.encode())
    return folder


def secrets_of(server) -> list[bytes]:
    return [server.login.session.encode(), server.login.token.encode()]


def every_byte(wacz: Path) -> list[tuple[str, bytes]]:
    """The WACZ file itself and every member, gzip members inflated."""
    out = [(str(wacz), wacz.read_bytes())]
    with zipfile.ZipFile(wacz) as zf:
        for name in zf.namelist():
            body = zf.read(name)
            if name.endswith(".gz"):
                body = gzip.GzipFile(fileobj=io.BytesIO(body)).read()
            out.append((name, body))
    return out


def assert_nowhere(secret_values: list[bytes], folder: Path) -> None:
    """No secret in any file under `folder` (WACZ files member by member, inflated)."""
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        chunks = every_byte(path) if path.suffix == ".wacz" else [(str(path), path.read_bytes())]
        for name, data in chunks:
            for secret in secret_values:
                assert secret not in data, f"a secret is in {name}"


def capture(run, key, tmp_path, *args, passphrase: str | None = PROFILE_PASS, monkeypatch=None):
    if passphrase is not None:
        monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", passphrase)
    else:
        monkeypatch.delenv("ARCHIVE_PROFILE_PASSPHRASE", raising=False)
    return run("capture", *args, "--key", key, "--store", tmp_path / "store",
               "--work-dir", tmp_path / "work", "--quiet", "--allow-private-addresses")


def test_profile_is_encrypted_at_rest_with_private_modes(profile, login_site):
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700
    path = profile / PROFILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    for secret in [*secrets_of(login_site), b"apiToken", b"session"]:
        assert secret not in data


def test_browser_capture_with_the_profile_captures_the_members_page_and_seals_no_secret(
        profile, login_site, run, key, pubkey, tmp_path, monkeypatch):
    result = capture(run, key, tmp_path, login_site.url("/members"), "--browser", "--profile", profile,
                     monkeypatch=monkeypatch)
    assert result.code == 0, result
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    page = next(p for p in pages(wacz) if p["url"].endswith("/members"))
    assert page["status"] == 200 and page.get("title") == "Members"
    recs = records(wacz)
    members = [r for r in recs if r["type"] == "response" and r["uri"].endswith("/members")]
    assert members and MEMBERS_TEXT.encode() in members[0]["payload"]
    # the browser did send the session cookie (the site saw it), and the record says so
    # without its value
    assert login_site.login.session in login_site.login.cookies_seen
    asked = [r for r in recs if r["type"] == "request" and r["uri"].endswith("/members")]
    assert asked and asked[0]["http"].get_header("Cookie").startswith("[redacted Cookie session=hmac-sha256:")
    meta = [r for r in recs if r["type"] == "metadata" and r["uri"].endswith("/members")
            and b"redacted:" in r["payload"]]
    assert meta and b"Cookie request header" in meta[0]["payload"]
    # the evidence names the profile, never a value; so does the custody entry
    evidence = json.loads(zipfile.ZipFile(wacz).read("evidence/capture.json"))
    identity = evidence["credentials"]["identity"]
    assert identity["profile"] == "alice" and identity["cookieNames"] == ["session"]
    assert identity["cookieDomains"] == ["127.0.0.1"] and len(identity["cookieNamesSha256"]) == 64
    ledger = [json.loads(line) for line in
              (tmp_path / "store" / "custody" / "ledger.jsonl").read_text().splitlines() if line.strip()]
    captured = [e for e in ledger if e.get("event") == "captured"]
    details = captured[-1]["details"]
    assert (details["profile"], details["cookie_domains"], details["cookie_names_sha256"],
            details["local_storage_origins"]) == (identity["profile"], identity["cookieDomains"],
                                                  identity["cookieNamesSha256"], identity["localStorageOrigins"])
    # no cookie or local-storage value anywhere: the WACZ (every member inflated), the store
    assert_nowhere(secrets_of(login_site), tmp_path / "store")
    verified = run("verify", wacz, "--trust", pubkey)
    assert verified.code == 0, verified
    assert "the browser profile alice for 127.0.0.1" in verified.out, verified


def test_without_the_profile_the_members_page_is_the_login_wall(login_site, run, key, tmp_path, monkeypatch):
    result = capture(run, key, tmp_path, login_site.url("/members"), "--browser", passphrase=None,
                     monkeypatch=monkeypatch)
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    assert MEMBERS_TEXT.encode() not in b"".join(data for _, data in every_byte(wacz))
    # recorded as what it is: a login wall, "logged out", not the members page (exit 1:
    # no page captured)
    assert result.code == 1 and "logged out" in result.out, result
    page = next(p for p in pages(wacz) if p["url"].endswith("/members"))
    assert page["errorKind"] == "logged-out", page


def test_profile_show_lists_names_and_never_a_value(profile, login_site, run, monkeypatch):
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", PROFILE_PASS)
    text = run("profile", "show", profile)
    as_json = run("profile", "show", profile, "--json")
    assert text.code == 0 and as_json.code == 0, (text, as_json)
    assert "session" in text.out and "127.0.0.1" in text.out and "apiToken" in text.out
    info = json.loads(as_json.out)
    assert [c["name"] for c in info["cookies"]] == ["session"] and not info["cookies"][0]["expired"]
    assert info["localStorage"][0]["localStorageKeys"] == ["apiToken"]
    for secret in secrets_of(login_site):
        for output in (text.out, text.err, as_json.out, as_json.err):
            assert secret.decode() not in output


def test_a_wrong_passphrase_is_one_line_exit_2_and_nothing_captured(
        profile, login_site, run, key, tmp_path, monkeypatch):
    before = len(login_site.site.requests)
    result = capture(run, key, tmp_path, login_site.url("/members"), "--browser", "--profile", profile,
                     passphrase="not the passphrase", monkeypatch=monkeypatch)
    assert result.code == 2 and "wrong passphrase" in result.err and len(result.err.strip().splitlines()) == 1
    assert len(login_site.site.requests) == before
    assert not (tmp_path / "store").exists() and not (tmp_path / "work").exists()
    shown = run("profile", "show", profile)
    assert shown.code == 2 and "wrong passphrase" in shown.err


def test_bad_profiles_and_options_are_one_line_errors(profile, run, key, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", PROFILE_PASS)
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / PROFILE_NAME).write_bytes(b'{"format": "archive-browser-profile", "version": 1, ' * 3)
    checks = [
        (("profile", "show", hostile), "not a browser profile"),
        (("profile", "show", tmp_path / "missing"), "no such profile folder"),
        (("capture", "http://127.0.0.1:9/", "--unsigned", "--profile", profile), "give --browser or --media"),
        (("capture", "http://127.0.0.1:9/", "--unsigned", "--profile-passphrase-file", tmp_path / "x"),
         "goes with --profile"),
    ]
    for args, words in checks:
        result = run(*args)
        assert result.code == 2 and words in result.err and len(result.err.strip().splitlines()) == 1, result


def test_profile_create_without_a_display_says_so(run, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = run("profile", "create", tmp_path / "p", "--url", "https://example.org/login")
    assert result.code == 2 and "no display" in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_profile_from_a_cookies_file(run, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", PROFILE_PASS)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(cookies_txt("v4lue-never-shown"))
    made = run("profile", "create", tmp_path / "p", "--from-cookies", cookies, "--json")
    assert made.code == 0, made
    assert "v4lue-never-shown" not in made.out + made.err
    assert b"v4lue-never-shown" not in (tmp_path / "p" / PROFILE_NAME).read_bytes()
    again = run("profile", "create", tmp_path / "p", "--from-cookies", cookies)
    assert again.code == 2 and "--replace" in again.err
    assert stat.S_IMODE((tmp_path / "p").stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    into_shared = run("profile", "create", shared, "--from-cookies", cookies)
    assert into_shared.code == 0 and "chmod 700" in into_shared.err
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755       # a folder that was there is left as it is
    assert stat.S_IMODE((shared / PROFILE_NAME).stat().st_mode) == 0o600
    (tmp_path / "notes.txt").write_text("not cookies\n")
    other = run("profile", "create", tmp_path / "q", "--from-cookies", tmp_path / "notes.txt")
    assert other.code == 2 and "not a Netscape cookies.txt" in other.err
    expired = tmp_path / "old.txt"
    expired.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t1000\tsession\tx\n")
    old = run("profile", "create", tmp_path / "r", "--from-cookies", expired)
    assert old.code == 2 and "expired" in old.err


def test_media_capture_with_a_profile_sends_its_cookie_and_seals_no_value(
        login_site, run, key, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", PROFILE_PASS)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(cookies_txt(login_site.login.session))
    assert run("profile", "create", tmp_path / "media-login", "--from-cookies", cookies).code == 0
    cookies.unlink()
    result = capture(run, key, tmp_path, login_site.url("/public-video"), "--media",
                     "--profile", tmp_path / "media-login", monkeypatch=monkeypatch)
    assert result.code == 0, result
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    items = json.loads(zipfile.ZipFile(wacz).read("evidence/capture.json"))["media"]["items"]
    assert [i["status"] for i in items] == ["kept"], items
    recs = records(wacz)
    kept = [r for r in recs if (r["uri"] or "").startswith("urn:media:") and r["type"] != "metadata"]
    # the video served whole: its file is a revisit of the response holding those bytes
    assert [r["type"] for r in kept] == ["revisit"]
    assert next(r for r in recs if r["headers"].get("WARC-Record-ID")
                == kept[0]["headers"]["WARC-Refers-To"])["payload"] == VIDEO
    asked = [r for r in recs if r["type"] == "request" and "/members-media/" in r["uri"]]
    assert asked and all(r["http"].get_header("Cookie").startswith("[redacted Cookie session=")
                         for r in asked)
    assert login_site.login.session in login_site.login.cookies_seen
    assert_nowhere([login_site.login.session.encode()], tmp_path / "store")
    # no cookies.txt left anywhere (yt-dlp has its cookies in memory: tests/test_secret_values.py)
    assert not list(tmp_path.rglob("cookies.txt"))


def test_a_job_logs_in_with_its_profile_and_a_wrong_passphrase_fails_the_run(
        profile, login_site, run, keydir, tmp_path, monkeypatch):
    from archive.jobs.spec import parse_job
    from tests.jobfiles import write_job
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("MEMBERS_PROFILE_PASS", PROFILE_PASS)
    monkeypatch.delenv("ARCHIVE_PROFILE_PASSPHRASE", raising=False)
    crawl = {"browser": True, "allow_private_addresses": True, "profile": str(profile),
             "profile_passphrase_env": "MEMBERS_PROFILE_PASS"}
    job = write_job(tmp_path, "members", [login_site.url("/members")], keydir / "signing-key.pem",
                    tmp_path / "store", crawl=crawl)
    done = run("jobs", "run", job, "--json")
    assert done.code == 0, done
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    assert MEMBERS_TEXT.encode() in b"".join(r["payload"] for r in records(wacz) if r["type"] == "response")
    assert json.loads(zipfile.ZipFile(wacz).read("evidence/capture.json"))["credentials"]["identity"]["profile"] == "alice"
    assert_nowhere(secrets_of(login_site), tmp_path / "store")
    monkeypatch.setenv("MEMBERS_PROFILE_PASS", "wrong")
    checked = run("jobs", "check", job)
    assert checked.code == 2 and "profile: cannot open the profile" in checked.out + checked.err, checked
    failed = run("jobs", "run", job, "--json")
    assert failed.code != 0 and "wrong passphrase" in failed.out + failed.err
    assert len(stored_waczs(tmp_path / "store")) == 1
    # a profile with neither browser nor media, or two passphrase sources, is refused
    bad = write_job(tmp_path, "bad", [login_site.url("/members")], None, tmp_path / "store",
                    crawl={"profile": str(profile), "profile_passphrase_env": "A",
                           "profile_passphrase_file": "f"})
    spec, problems = parse_job(bad)
    messages = " | ".join(p.message for p in problems)
    assert spec is None and "add browser = true or media = true" in messages
    assert "'profile_passphrase_file', not both" in messages


@pytest.fixture(scope="module")
def display():
    """A virtual display (Xvfb) for the visible browser window of `profile create`."""
    import shutil
    import subprocess
    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb (scripts/test installs it)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24",
                               "-nolisten", "tcp"], pass_fds=[write],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as fh:
            number = fh.readline().strip()
        assert number, "Xvfb gave no display number"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def test_profile_create_opens_a_window_and_saves_the_login_when_enter_is_pressed(
        display, login_site, tmp_path):
    """The command as a person runs it, at a terminal (a pty), with a window on a display:
    the login happens in the window (the page logs itself in here), Enter saves it."""
    import pty
    import subprocess
    import time
    from tests.conftest import BIN
    _chromium_or_skip()
    env = {**os.environ, "DISPLAY": display, "ARCHIVE_PROFILE_PASSPHRASE": PROFILE_PASS}
    env.pop("WAYLAND_DISPLAY", None)
    master, slave = pty.openpty()
    served = len([p for p in login_site.site.requests if p == "/stored"])
    proc = subprocess.Popen([str(BIN / "archive"), "profile", "create", str(tmp_path / "p"),
                             "--url", login_site.url("/auto-login"), "--json"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    try:
        until = time.monotonic() + 60
        while len([p for p in login_site.site.requests if p == "/stored"]) == served:
            assert proc.poll() is None and time.monotonic() < until, proc.communicate(timeout=10)
            time.sleep(0.2)
        os.write(master, b"\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert b"close the window (or press Enter here)" in err
    info = json.loads(out)
    assert [c["name"] for c in info["cookies"]] == ["session"]
    assert info["localStorage"][0]["localStorageKeys"] == ["apiToken"]
    for secret in secrets_of(login_site):
        assert secret not in out + err
        assert secret not in (tmp_path / "p" / PROFILE_NAME).read_bytes()


def test_a_resumed_capture_opens_its_profile_again_and_refuses_another_login(
        profile, login_site, run, key, tmp_path, monkeypatch):
    import shutil
    from tests.killing import capture_killed_when, group_lines
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", PROFILE_PASS)
    mine = tmp_path / "alice"
    shutil.copytree(profile, mine)
    journal = capture_killed_when(
        [login_site.url("/members"), login_site.url("/slow"), "--browser", "--profile", mine,
         "--key", key, "--store", tmp_path / "store", "--quiet", "--allow-private-addresses"],
        tmp_path / "work", lambda j: group_lines(j) >= 1)
    work = journal.parent
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", "wrong")
    wrong = run("capture", "--resume", work, "--quiet")
    assert wrong.code == 2 and "wrong passphrase" in wrong.err and work.is_dir()
    # the folder now holds another login (other cookies): the capture is not finished with it
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", PROFILE_PASS)
    cookies = tmp_path / "other.txt"
    cookies.write_text(cookies_txt("someone-else") + "127.0.0.1\tFALSE\t/\tFALSE\t0\tother\tx\n")
    assert run("profile", "create", mine, "--from-cookies", cookies, "--replace").code == 0
    other = run("capture", "--resume", work, "--quiet")
    assert other.code == 2 and "another login" in other.err and work.is_dir(), other
    shutil.rmtree(mine)
    shutil.copytree(profile, mine)
    done = run("capture", "--resume", work, "--quiet")
    assert done.code == 0, done
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    assert {p["url"].rsplit("/", 1)[-1] for p in pages(wacz)} >= {"members", "slow"}
    assert json.loads(zipfile.ZipFile(wacz).read("evidence/capture.json"))["credentials"]["identity"]["profile"] == "alice"
    assert_nowhere(secrets_of(login_site), tmp_path / "store")


def test_browser_capture_with_a_cookies_file_starts_logged_in(login_site, run, key, tmp_path, monkeypatch):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(cookies_txt(login_site.login.session))
    result = capture(run, key, tmp_path, login_site.url("/members"), "--browser", "--cookies", cookies,
                     passphrase=None, monkeypatch=monkeypatch)
    assert result.code == 0, result
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    members = [r for r in records(wacz) if r["type"] == "response" and r["uri"].endswith("/members")]
    assert members and MEMBERS_TEXT.encode() in members[0]["payload"]
    assert json.loads(zipfile.ZipFile(wacz).read("evidence/capture.json"))["credentials"]["identity"][
        "cookieFile"] == "cookies.txt"
    assert_nowhere([login_site.login.session.encode()], tmp_path / "store")
    both = capture(run, key, tmp_path, login_site.url("/members"), "--browser", "--cookies", cookies,
                   "--profile", tmp_path, monkeypatch=monkeypatch)
    assert both.code == 2 and "one login, not two" in both.err


def test_expired_profiles_are_shown_so_and_refused_for_capture(run, key, tmp_path, monkeypatch):
    import base64
    old = {"name": "session", "value": "0ld-v4lue", "domain": "127.0.0.1", "path": "/", "expires": 1000.0,
           "httpOnly": True, "secure": False, "sameSite": "Lax"}
    save(tmp_path / "old", {"cookies": [old], "origins": []}, PROFILE_PASS.encode())
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", PROFILE_PASS)
    shown = run("profile", "show", tmp_path / "old")
    assert shown.code == 0 and "EXPIRED" in shown.out and "log in again" in shown.out
    assert "0ld-v4lue" not in shown.out + shown.err
    refused = capture(run, key, tmp_path, "http://127.0.0.1:9/", "--browser", "--profile", tmp_path / "old",
                      monkeypatch=monkeypatch)
    assert refused.code == 2 and "has expired" in refused.err and not (tmp_path / "store").exists()
    # a job logging in with it fails its run, and notifies: an unattended session has ended
    from tests.jobfiles import write_job
    told = tmp_path / "told.json"
    job = write_job(tmp_path, "old", ["http://127.0.0.1:9/"], None, tmp_path / "jobstore",
                    crawl={"browser": True, "profile": str(tmp_path / "old")},
                    notify={"command": ["sh", "-c", f"cat > {told}"], "when": "failures"})
    (tmp_path / "jobstore").mkdir()
    ran = run("jobs", "run", job)
    assert ran.code != 0 and "has expired" in told.read_text(), ran
    # a file asking for a ruinous key derivation is refused before any work
    envelope = json.loads((tmp_path / "old" / PROFILE_NAME).read_text())
    envelope["kdf"]["n"] = 1 << 30
    (tmp_path / "old" / PROFILE_NAME).write_text(json.dumps(envelope))
    costly = run("profile", "show", tmp_path / "old")
    assert costly.code == 2 and "not a browser profile" in costly.err
    # a flipped byte of the ciphertext (or of the header it is bound to) does not open
    envelope["kdf"]["n"] = 1 << 15
    sealed = bytearray(base64.b64decode(envelope["ciphertext"]))
    sealed[5] ^= 1
    envelope["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    (tmp_path / "old" / PROFILE_NAME).write_text(json.dumps(envelope))
    flipped = run("profile", "show", tmp_path / "old")
    assert flipped.code == 2 and "wrong passphrase or damaged" in flipped.err


def test_expired_cookies_of_a_profile_are_not_sent_and_its_identity_stays(tmp_path, monkeypatch):
    from archive.profiles.vault import open_for_capture
    cookie = {"domain": "127.0.0.1", "path": "/", "httpOnly": False, "secure": False, "sameSite": "Lax"}
    state = {"cookies": [{**cookie, "name": "old", "value": "x", "expires": 1000.0},
                         {**cookie, "name": "live", "value": "y", "expires": -1}], "origins": []}
    save(tmp_path / "p", state, PROFILE_PASS.encode())
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", PROFILE_PASS)
    opened = open_for_capture(tmp_path / "p")
    assert [c["name"] for c in opened.cookies] == ["live"]
    assert "\told\t" not in opened.cookies_txt() and "\tlive\ty" in opened.cookies_txt()
    assert opened.identity["cookieNames"] == ["live", "old"]
