"""Capturing behind a login (issue 25): cookies, secret headers and URL credentials are
sent where they belong, never sealed (redacted with a keyed digest, the redaction named),
login walls are recorded as "logged out", and bad credentials stop the capture."""

from __future__ import annotations

import base64
import gzip
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from archive.capture.credentials import CredentialsError, load_cookies
from archive.capture.redaction import Redaction
from archive.cli import main as cli_main
from tests.conftest import BIN, PASSPHRASE, stored_waczs
from tests.jobfiles import write_job
from tests.loginsite import REFRESHED, SECRETS, SESSION, TOKEN, USER, PASSWORD, cookies_txt, login_site
from tests.site import SiteServer
from tests.warcs import member, pages, records


@pytest.fixture(scope="module")
def lsite():
    with SiteServer(login_site()) as server:
        yield server


def capture(args: list, out: Path, key: Path | None) -> tuple[int, Path | None]:
    """`archive capture ARGS` in this process; (exit code, stored WACZ)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
        code = cli_main(["capture", *map(str, args), "--store", str(out / "store"),
                         "--work-dir", str(out / "work"), "--quiet", "--catalog",
                         str(out / "catalog.sqlite"),
                         *(["--key", str(key)] if key else ["--unsigned"])])
    found = stored_waczs(out / "store")
    return code, Path(found[-1]) if found else None


def basic_seed(lsite) -> str:
    return lsite.url("/basic").replace("://", f"://{USER}:{PASSWORD}@")


@pytest.fixture(scope="module")
def logged_in(lsite, keydir, tmp_path_factory):
    """One capture of every page behind the login, with cookies and a bearer token; and a
    second one of the members page with the same session and a seed URL's credentials."""
    out = tmp_path_factory.mktemp("logged-in")
    cookies = out / "my-session.txt"
    cookies.write_text(cookies_txt())
    key = keydir / "signing-key.pem"
    code, wacz = capture([lsite.url("/members"), lsite.url("/wall"), lsite.url("/api"), "--cookies", cookies,
                          "--header", f"Authorization: Bearer {TOKEN}",
                          "--header", "X-Team: investigations"], out, key)
    assert code == 0 and wacz is not None
    code, again = capture([lsite.url("/members"), basic_seed(lsite), "--cookies", cookies],
                          out / "again", key)
    assert code == 0
    return out, wacz, again


def evidence(wacz: Path) -> dict:
    return json.loads(member(wacz, "evidence/capture.json"))


def everything_inflated(wacz: Path) -> bytes:
    """The WACZ's bytes, every member inflated and every WARC record decompressed."""
    parts = [wacz.read_bytes()]
    with zipfile.ZipFile(wacz) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            parts.append(data)
            if name.endswith(".gz"):
                parts.append(gzip.GzipFile(fileobj=io.BytesIO(data)).read())
    for record in records(wacz):
        parts += [record["payload"], json.dumps(record["headers"]).encode()]
    return b"\n".join(parts)


def test_with_the_cookie_file_the_members_pages_are_captured(logged_in, lsite):
    _, wacz, again = logged_in
    listed = {urlpath(p["url"]): p for p in pages(wacz)}
    assert listed["/members"]["status"] == 200 and "error" not in listed["/members"]
    assert listed["/wall"]["title"] == "Channel" and "error" not in listed["/wall"]
    assert listed["/api"]["status"] == 200 and "error" not in listed["/api"]
    basic = next(p for p in pages(again) if urlpath(p["url"]) == "/basic")
    assert basic["status"] == 200 and "error" not in basic and "@" not in basic["url"]
    bodies = {urlpath(r["uri"]): r["payload"] for r in records(wacz) if r["type"] == "response"}
    assert b"members only" in bodies["/members"] and b"posts" in bodies["/api"]


def urlpath(url: str) -> str:
    return "/" + url.split("/", 3)[3] if url.count("/") >= 3 else url


def test_no_secret_appears_in_the_capture_the_store_or_the_catalog(logged_in):
    out, wacz, again = logged_in
    sealed = everything_inflated(wacz) + everything_inflated(again)
    for secret in SECRETS:
        assert secret.encode() not in sealed, secret
    assert b"alice" not in sealed           # the user name of the seed URL neither
    # the session the server set anew is in its response (never altered), and sent back
    # with the next request only redacted
    recs = records(wacz)
    assert any(REFRESHED in str(r["http"]) for r in recs if r["type"] == "response")
    assert not any(REFRESHED in str(r["http"]) or REFRESHED.encode() in r["payload"]
                   for r in recs if r["type"] == "request")
    # the store (ledger, keys, captures) and the catalog: every file, read raw
    for folder in (out / "store", out / "again" / "store"):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for secret in SECRETS:
                    assert secret.encode() not in data, (path, secret)
    for path in out.rglob("catalog.sqlite*"):
        data = path.read_bytes()
        assert not any(secret.encode() in data for secret in SECRETS), path
    # the work folders are gone, and with them the request files holding the headers
    assert not any((out / "work").iterdir())


def test_the_redaction_is_named_in_the_warc_and_the_evidence(logged_in, lsite, keydir):
    _, wacz, again = logged_in
    recs = records(wacz)
    request = next(r for r in recs if r["type"] == "request" and urlpath(r["uri"]) == "/members")
    cookie = request["http"].get_header("Cookie")
    # both cookies for this site were sent (so this test could fail), the foreign one not
    assert cookie.startswith("[redacted Cookie ") and "session=hmac-sha256:" in cookie
    assert "prefs=hmac-sha256:" in cookie and "foreign" not in cookie
    api = next(r for r in recs if r["type"] == "request" and urlpath(r["uri"]) == "/api")
    assert api["http"].get_header("Authorization").startswith("[redacted Authorization hmac-sha256:")
    assert api["http"].get_header("X-Team") == "investigations"   # not a secret: as sent
    basic = next(r for r in records(again) if r["type"] == "request" and urlpath(r["uri"]) == "/basic")
    assert basic["http"].get_header("Authorization").startswith("[redacted Authorization ")
    assert "@" not in basic["uri"]
    meta = next(r for r in recs if r["type"] == "metadata" and urlpath(r["uri"] or "") == "/members")
    assert b"redacted: Cookie request header (cookie session)" in meta["payload"]
    assert b"session-cookies-set: session" in meta["payload"]
    creds = evidence(wacz)["credentials"]
    assert creds["identity"]["cookieFile"] == "my-session.txt"
    assert creds["identity"]["cookieDomains"] == ["127.0.0.1", "elsewhere.example"]
    assert len(creds["identity"]["cookieNamesSha256"]) == 64
    assert creds["identity"]["secretHeaders"] == ["Authorization"]
    port = lsite.url("/").rsplit(":", 1)[1].strip("/")
    assert evidence(again)["credentials"]["identity"]["urlCredentials"] == [f"http://127.0.0.1:{port}"]
    signer = subprocess.run([str(BIN / "archive"), "keys", "show", str(keydir / "signing-key.pub.pem")],
                            capture_output=True, text=True).stdout
    assert "derived from the signing key" in creds["redaction"]["digestKey"]
    assert creds["redaction"]["digestKey"].split()[5].rstrip(":") in signer      # its fingerprint
    sent = {(v["header"], v.get("cookie")) for v in creds["redaction"]["values"]}
    assert {("Cookie", "session"), ("Cookie", "prefs"), ("Authorization", None)} <= sent
    assert [c["name"] for c in creds["sessionCookies"]] == ["session"]
    assert "end it" in creds["advice"]
    # the options say which headers were given, never a secret value
    assert evidence(wacz)["options"]["headers"] == ["Authorization: [redacted]", "X-Team: investigations"]
    # the custody ledger's captured entry names the identity
    ledger = (wacz.parents[4] / "custody" / "ledger.jsonl").read_text()
    captured = [json.loads(line) for line in ledger.splitlines() if '"captured"' in line]
    assert any(entry.get("details", {}).get("cookie_file") == "my-session.txt" for entry in captured), captured


def test_the_same_session_gives_the_same_digest_in_two_captures(logged_in):
    _, wacz, again = logged_in

    def session_digest(path: Path) -> str:
        values = evidence(path)["credentials"]["redaction"]["values"]
        return next(v["digest"] for v in values if v.get("cookie") == "session")
    assert session_digest(wacz) == session_digest(again)
    assert session_digest(wacz).startswith("hmac-sha256:") and SESSION not in session_digest(wacz)


def test_a_capture_with_credentials_verifies(logged_in, pubkey):
    _, wacz, _ = logged_in
    done = subprocess.run([str(BIN / "archive"), "verify", str(wacz), "--trust", str(pubkey)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("VERIFIED"), done.stdout
    assert "session" in done.stdout and "end it" in done.stdout


def test_without_the_cookies_logged_out_is_recorded(lsite, key, pubkey, tmp_path):
    code, wacz = capture([lsite.url("/members")], tmp_path, key)
    assert code == 1           # stored as a record of the failure: no page captured
    entry = pages(wacz)[0]
    assert entry["errorKind"] == "logged-out" and "/login" in entry["error"]
    assert "logged out" in evidence(wacz)["failures"][0]["error"]
    # the login page itself is not taken for the content
    assert not any(urlpath(p["url"]).startswith("/login") for p in pages(wacz))
    done = subprocess.run([str(BIN / "archive"), "verify", str(wacz), "--trust", str(pubkey)],
                          capture_output=True, text=True)
    assert "RECORD OF FAILURES" in done.stdout.splitlines()[0] and "logged out" in done.stdout


def test_a_stale_session_meets_the_200_login_wall(lsite, key, tmp_path):
    stale = tmp_path / "stale.txt"
    stale.write_text(cookies_txt().replace(SESSION, "an-old-session"))
    code, wacz = capture([lsite.url("/wall"), lsite.url("/"), "--cookies", stale], tmp_path, key)
    assert code == 0           # the public page is captured
    listed = {urlpath(p["url"]): p for p in pages(wacz)}
    assert listed["/wall"]["errorKind"] == "logged-out" and "login form" in listed["/wall"]["error"]
    assert "error" not in listed["/"]


def test_a_selector_rule_names_a_login_wall(lsite, key, tmp_path):
    code, wacz = capture([lsite.url("/wall"), "--logged-out-selector", "input[name=pw]"], tmp_path, key)
    assert code == 1
    assert "input[name=pw]" in pages(wacz)[0]["error"]


@pytest.mark.parametrize("content,args,said", [
    ('{"cookies": []}', [], "not a Netscape cookies.txt"),
    (None, [], "has expired"),
    ("# Netscape HTTP Cookie File\n", [], "holds no cookies"),
    (cookies_txt(), ["--header", "Authorization:"], "has no value"),
    (cookies_txt(), ["--header", "Authorization"], "give it as 'Name: value'"),
])
def test_bad_credentials_are_one_line_errors_and_nothing_is_captured(run, lsite, tmp_path, content, args, said):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(content if content is not None else cookies_txt(expires=1_000_000_000))
    result = run("capture", lsite.url("/members"), "--cookies", cookies, *args, "--unsigned",
                 "--store", tmp_path / "store", "--work-dir", tmp_path / "work")
    assert result.code == 2 and said in result.err, result
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert not stored_waczs(tmp_path / "store") and not (tmp_path / "work").exists()


def test_credentials_in_a_url_never_reach_an_error_message(run, tmp_path):
    result = run("capture", "http://alice:hunter2@[::1/", "--unsigned")
    assert result.code == 2 and "hunter2" not in result.err and "alice" not in result.err


def test_a_job_whose_session_expired_notifies(run, key, lsite, tmp_path):
    stale = tmp_path / "stale.txt"
    stale.write_text(cookies_txt().replace(SESSION, "an-old-session"))
    out = tmp_path / "notified.json"
    job = write_job(tmp_path, "members", [lsite.url("/members"), lsite.url("/")], key, tmp_path / "store",
                    crawl={"depth": 0, "cookies": str(stale), "logged_out_url": ["/login"]},
                    notify={"command": ["sh", "-c", f"cat > {out}"], "when": "failures"})
    result = run("jobs", "run", job, "--json")
    assert result.code == 1, result
    said = json.loads(out.read_text())
    assert any("session expired" in problem for problem in said["problems"])


def test_cookie_files_as_exporters_write_them(tmp_path):
    path = tmp_path / "c.txt"
    # no header line, CRLF, an expiry of 0 (a session cookie to yt-dlp), #HttpOnly_
    path.write_bytes(b"#HttpOnly_.example.org\tTRUE\t/\tTRUE\t0\tsid\tv1\r\n"
                     b"example.org\tFALSE\t/app\tFALSE\t0\tpref\tv2\r\n")
    cookies = {c.name: c for c in load_cookies(path)[0]}
    assert cookies["sid"].value == "v1" and cookies["sid"].secure and cookies["pref"].path == "/app"
    path.write_text("127.0.0.1\tFALSE\t/\tFALSE\t1000000000\tsession\told\n"    # expired in 2001
                    "127.0.0.1\tFALSE\t/\tFALSE\t0\tprefs\tv\n")
    alive, expired = load_cookies(path)
    assert expired == ["session"] and [c.name for c in alive] == ["prefs"]
    path.write_text("not\ta cookie\n")
    with pytest.raises(CredentialsError, match="not a Netscape cookies.txt"):
        load_cookies(path)


def test_redaction_replaces_only_secret_header_values():
    redaction = Redaction.make(["X-Api-Key"], key=b"k" * 32)
    request = (b"GET /a HTTP/1.1\r\nHost: h\r\nX-Api-Key: k3y\r\ncookie: a=1; b=2\r\n"
               b"Accept: */*\r\n\r\nbody Cookie: a=1")
    redacted, found = redaction.redact(request)
    assert b"k3y" not in redacted and b"a=1;" not in redacted.split(b"\r\n\r\n")[0]
    assert redacted.endswith(b"\r\n\r\nbody Cookie: a=1")       # the body is as sent
    assert b"Accept: */*" in redacted and b"GET /a HTTP/1.1" in redacted
    assert [(r.header, r.cookie) for r in found] == [("X-Api-Key", None), ("cookie", "a"), ("cookie", "b")]
    assert found[1].digest == redaction.digest(b"1") != Redaction.make(key=b"j" * 32).digest(b"1")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium")
def test_the_browser_sends_the_headers_through_the_proxy_and_meets_login_walls(lsite, key, tmp_path):
    code, wacz = capture([lsite.url("/api"), lsite.url("/members"), lsite.url("/wall"), "--browser",
                          "--header", f"Authorization: Bearer {TOKEN}",
                          "--logged-out-selector", "input[name=pw]"], tmp_path, key)
    assert code == 0
    listed = {urlpath(p["url"]): p for p in pages(wacz)}
    assert listed["/api"]["status"] == 200 and "error" not in listed["/api"]
    # Chromium followed the redirect to /login: that is a login wall, not the page
    members = next(p for path, p in listed.items() if path.startswith(("/members", "/login")))
    assert members.get("errorKind") == "logged-out"
    # the rendered page shows the login form: a login wall too
    assert listed["/wall"]["errorKind"] == "logged-out" and "input[name=pw]" in listed["/wall"]["error"]
    assert TOKEN.encode() not in everything_inflated(wacz)
    api = [r for r in records(wacz) if r["type"] == "request" and urlpath(r["uri"]) == "/api"]
    assert api and all(r["http"].get_header("Authorization").startswith("[redacted Authorization ")
                       for r in api)


def test_secret_headers_go_to_the_seeds_hosts_only_and_url_credentials_to_their_origin():
    from archive.capture.credentials import request_headers

    headers = ["Authorization: Bearer t", "X-Api-Key: k", "Accept-Language: fr"]
    logins = {"https://intranet.example:443": "Basic YTpi"}
    seeds = {"example.org", "intranet.example"}
    assert request_headers("https://example.org/a", headers, ["x-api-key"], seeds, logins) == {
        "Authorization": "Bearer t", "X-Api-Key": "k", "Accept-Language": "fr"}
    # a CDN or a third party a page links to: no secret
    assert request_headers("https://cdn.example.net/x.js", headers, ["X-Api-Key"], seeds, logins) == {
        "Accept-Language": "fr"}
    # the origin whose seed URL held credentials: those, not the --header's
    assert request_headers("https://intranet.example/r", headers, [], seeds, logins)["Authorization"] == "Basic YTpi"
    assert "Authorization" not in request_headers("http://intranet.example/r", [], [], seeds, logins)


def test_a_killed_capture_resumes_with_its_credentials(lsite, key, pubkey, tmp_path):
    from tests.killing import capture_killed_when, group_lines
    from tests.site import slow

    lsite.site.add("/slow-members", handler=slow(3.0))
    cookies = tmp_path / "my-session.txt"
    cookies.write_text(cookies_txt())
    work = tmp_path / "work"
    journal = capture_killed_when(
        [lsite.url("/members"), lsite.url("/slow-members"), "--cookies", cookies, "--workers", "1",
         "--header", f"Authorization: Bearer {TOKEN}", "--key", key, "--store", tmp_path / "store",
         "--quiet", "--catalog", "off"],
        work, lambda j: group_lines(j) >= 2)
    saved = journal.parent / "request.json"
    assert saved.stat().st_mode & 0o777 == 0o600     # it holds the headers, for the resume
    code = cli_main(["capture", "--resume", str(journal.parent), "--quiet", "--catalog", "off"])
    assert code == 0
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    listed = {urlpath(p["url"]): p for p in pages(wacz)}
    assert "error" not in listed["/members"] and listed["/slow-members"]["status"] == 200
    sealed = everything_inflated(wacz)
    assert not any(secret.encode() in sealed for secret in SECRETS)
    assert evidence(wacz)["credentials"]["identity"]["cookieFile"] == "my-session.txt"


def test_a_job_file_carries_the_login_keys(tmp_path):
    from archive.jobs.request import capture_request
    from archive.jobs.spec import parse_job

    (tmp_path / "session.txt").write_text(cookies_txt())
    path = write_job(tmp_path, "members", [f"https://{USER}:{PASSWORD}@example.org/members"], None,
                     tmp_path / "store",
                     crawl={"cookies": "session.txt", "headers": ["X-Api-Key: k3y"],
                            "secret_headers": ["X-Api-Key"], "logged_out_url": ["/expired"],
                            "logged_out_selector": ["#login-box"]})
    spec, problems = parse_job(path)
    assert problems == []
    crawl = capture_request(spec).crawl
    assert crawl.seeds == ["https://example.org/members"]
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert crawl.url_logins == {"https://example.org:443": f"Basic {token}"}
    assert Path(crawl.cookies) == tmp_path / "session.txt"
    assert (crawl.headers, crawl.secret_headers) == (["X-Api-Key: k3y"], ["X-Api-Key"])
    assert (crawl.logged_out_url, crawl.logged_out_selector) == (["/expired"], ["#login-box"])
    bad = write_job(tmp_path, "bad", ["https://example.org/"], None, tmp_path / "store",
                    crawl={"headers": ["X-Api-Key:"], "logged_out_selector": ["a[["]})
    spec, problems = parse_job(bad)
    assert spec is None and len(problems) == 2
    assert "has no value" in problems[0].message + problems[1].message
