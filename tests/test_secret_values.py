"""Secret values sent where no header name says so (the red team's L1, L2, L3, L9): a
page's script copies a local-storage token into a header, a query string and a JSON body,
and a cookie into X-XSRF-TOKEN; a cookies.txt line without a name; a yt-dlp extractor
copying a cookie into x-csrf-token; yt-dlp's cookies on disk when a capture is killed.
Each test captures for real (the site on 127.0.0.1, Chromium, yt-dlp) and greps every
byte of what it left (tests.secretgrep: every member, inflated, in every form) for the
secrets, which the site shows it did receive: the capture sent them, and sealed none."""

from __future__ import annotations

import gzip
import json
import os
import secrets
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from archive.profiles.vault import save
from tests.conftest import PASSPHRASE, stored_waczs
from tests.loginsite import _send
from tests.media import trickle
from tests.profilesite import _PathRoutes
from tests.secretgrep import secrets_in
from tests.site import Site, SiteServer
from tests.warcs import records

PROFILE_PASS = "profile passphrase for tests"
HERE = Path(__file__).parent
# served as video/mp4: yt-dlp keeps a file it is pointed at as it comes, whatever it holds
VIDEO = bytes(range(256)) * 40


def token(kind: str) -> str:
    """A secret of this run: found nowhere unless something leaked it."""
    return f"{kind}-{secrets.token_hex(12)}"


class Heard:
    """What the site's API was sent: so a test knows the secret did go out (and can fail)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []

    def handler(self, h) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        self.requests.append({"path": h.path, "headers": dict(h.headers.items()),
                              "body": h.rfile.read(length).decode() if length else ""})
        # each answer its own: none is stored as a revisit of another
        _send(h, 200, json.dumps({"heard": len(self.requests)}), content_type="application/json")

    def header(self, name: str) -> list[str]:
        return [v for r in self.requests for k, v in r["headers"].items() if k.lower() == name.lower()]


def serve(site: Site) -> SiteServer:
    """A server for `site` that answers POST as it answers GET (the API takes JSON posts)."""
    server = SiteServer(site)
    server.httpd.RequestHandlerClass.do_POST = server.httpd.RequestHandlerClass.do_GET
    return server


def capture(run, key, tmp_path: Path, *args) -> tuple:
    """`archive capture ARGS` in this process; (its Result, the stored WACZ)."""
    result = run("capture", *args, "--key", key, "--store", tmp_path / "store",
                 "--work-dir", tmp_path / "work", "--allow-private-addresses")
    found = stored_waczs(tmp_path / "store")
    return result, Path(found[-1]) if found else None


def profile(folder: Path, monkeypatch, cookies: dict, storage: dict | None = None,
            origin: str | None = None, script_readable: tuple = ()) -> Path:
    """A browser profile (saved as `profile create` saves one) with these cookies (name:
    value, for 127.0.0.1; HttpOnly but those a page's script may read) and local storage
    of `origin`; its passphrase in the environment."""
    base = {"domain": "127.0.0.1", "path": "/", "expires": time.time() + 3600, "secure": False,
            "sameSite": "Lax"}
    save(folder, {
        "cookies": [{**base, "name": n, "value": v, "httpOnly": n not in script_readable}
                    for n, v in cookies.items()],
        "origins": [{"origin": origin,
                     "localStorage": [{"name": k, "value": v} for k, v in (storage or {}).items()]}]
        if storage else [],
    }, PROFILE_PASS.encode())
    monkeypatch.setenv("ARCHIVE_PROFILE_PASSPHRASE", PROFILE_PASS)
    return folder


def evidence(wacz: Path) -> dict:
    return json.loads(zipfile.ZipFile(wacz).read("evidence/capture.json"))


def requests_to(wacz: Path, path: str) -> list[dict]:
    return [r for r in records(wacz) if r["type"] == "request" and urlsplit(r["uri"]).path == path]


def json_lines(wacz: Path, member: str) -> list[dict]:
    return [json.loads(line) for line in zipfile.ZipFile(wacz).read(member).decode().splitlines()]


def index_urls(wacz: Path) -> list[str]:
    lines = gzip.decompress(zipfile.ZipFile(wacz).read("indexes/index.cdx.gz")).decode().splitlines()
    return [json.loads(line.split(" ", 2)[2])["url"] for line in lines]


def verified(run, wacz: Path, pubkey: Path) -> str:
    done = run("verify", wacz, "--trust", pubkey)
    assert done.code == 0 and done.out.startswith("VERIFIED"), done
    return done.out


# -- L1: a page's script sends a token of local storage, and a cookie, where it likes ------
SPA = """<p id="hello">app</p><script>
const token = localStorage.getItem("apiToken");
const xsrf = (document.cookie.match(/XSRF-TOKEN=([^;]+)/) || [])[1];
Promise.all([
  fetch("/api/me", {headers: {"X-Auth-Token": token, "X-XSRF-TOKEN": xsrf}}),
  fetch("/api/search?q=news&access_token=" + encodeURIComponent(token)),
  fetch("/api/save", {method: "POST", headers: {"Content-Type": "application/json"},
                      body: JSON.stringify({draft: "hello", token: token})}),
]).then(() => {
  const done = document.createElement("p");
  done.id = "done"; done.textContent = "sent"; document.body.append(done);
});
</script>"""


def test_a_local_storage_token_and_a_cookie_copied_by_the_page_are_sealed_nowhere(
        run, key, pubkey, tmp_path, monkeypatch):
    heard, site = Heard(), Site()
    site.routes = _PathRoutes()         # the API's routes whatever their query
    site.html("/app", "App", SPA)
    for path in ("/api/me", "/api/search", "/api/save"):
        site.add(path, handler=heard.handler)
    api_token, session, xsrf = token("tok"), token("sess"), token("xsrf")
    with serve(site) as server:
        # XSRF-TOKEN is a framework's: the page reads it and sends it back in a header
        alice = profile(tmp_path / "alice", monkeypatch, {"session": session, "XSRF-TOKEN": xsrf},
                        {"apiToken": api_token}, server.base, script_readable=("XSRF-TOKEN",))
        result, wacz = capture(run, key, tmp_path, server.url("/app"), "--browser", "--profile", alice,
                               "--wait-for", "#done")
    assert result.code == 0, result
    # the page did send them: in a header, a query string, a JSON body; the cookie in a header
    assert heard.header("X-Auth-Token") == [api_token] and heard.header("X-XSRF-TOKEN") == [xsrf]
    search = next(r for r in heard.requests if r["path"].startswith("/api/search"))
    assert parse_qs(urlsplit(search["path"]).query)["access_token"] == [api_token]
    posted = next(r for r in heard.requests if r["path"] == "/api/save")
    assert json.loads(posted["body"])["token"] == api_token
    # and none of them is anywhere in the store: the WACZ (every member, inflated), the ledger
    assert secrets_in([api_token, session, xsrf], tmp_path / "store") == []

    me, = requests_to(wacz, "/api/me")
    digest = me["http"].get_header("X-Auth-Token").removeprefix("[redacted X-Auth-Token ").rstrip("]")
    assert digest.startswith("hmac-sha256:")
    assert me["http"].get_header("X-XSRF-TOKEN").startswith("[redacted X-XSRF-TOKEN hmac-sha256:")
    # the address is recorded (request line, WARC-Target-URI, index) with the token's marker:
    # the same digest as the header's, so one can tell the same token went both ways
    asked, = requests_to(wacz, "/api/search")
    marked = f"/api/search?q=news&access_token=(redacted:{digest})"
    assert asked["uri"] == server.url(marked) and asked["http"].statusline == f"{marked} HTTP/1.1"
    kinds = [r["type"] for r in records(wacz) if r["uri"] == asked["uri"]]
    assert kinds == ["response", "request", "metadata"]
    assert asked["uri"] in index_urls(wacz)     # replay finds it there (verify matches them too)
    saved, = requests_to(wacz, "/api/save")
    assert json.loads(saved["payload"]) == {"draft": "hello", "token": f"(redacted:{digest})"}
    # the evidence says what was replaced, where and why, never a value
    redaction = evidence(wacz)["credentials"]["redaction"]
    values = {(v["header"], v.get("host")): v for v in redaction["values"]}
    header = values[("X-Auth-Token", None)]
    assert header["digest"] == digest and "known to be secret" in header["why"]
    assert values[("(request-target)", "127.0.0.1")]["digest"] == digest
    assert values[("(request-body)", None)]["digest"] == digest
    assert redaction["knownValues"]["lookedFor"] == 3 and redaction["addresses"]["hosts"] == ["127.0.0.1"]
    meta = next(r for r in records(wacz) if r["type"] == "metadata" and r["uri"] == asked["uri"])
    assert b"request-target and WARC-Target-URI: a value known to be secret" in meta["payload"]
    assert "carried a secret value in their address" in result.err
    verified(run, wacz, pubkey)


def test_a_page_whose_address_carries_a_token_is_listed_and_replayed_under_the_marked_address(
        run, key, pubkey, tmp_path, monkeypatch):
    """The page itself goes where its script says, its address carrying the token: the
    records, the index, pages.jsonl, the snapshots and the catalog all name it with the
    token's marker, so that the page is found (replayed) where it is listed."""
    site = Site()
    site.routes = _PathRoutes()
    site.html("/go", "Going",
              '<script>location.replace("/inbox?t=" + localStorage.getItem("apiToken"))</script>')
    site.html("/inbox", "Inbox", "<p>the messages</p>")
    api_token = token("tok")
    with serve(site) as server:
        alice = profile(tmp_path / "alice", monkeypatch, {"session": token("sess")},
                        {"apiToken": api_token}, server.base)
        result, wacz = capture(run, key, tmp_path, server.url("/go"), "--browser", "--profile", alice,
                               "--wait-for", "p")
    assert result.code == 0, result
    assert f"/inbox?t={api_token}" in site.requests          # the browser did go there
    assert secrets_in([api_token], tmp_path / "store") == []
    page, = [p for p in json_lines(wacz, "pages/pages.jsonl")[1:] if p.get("title") == "Inbox"]
    assert page["url"].startswith(server.url("/inbox?t=(redacted:hmac-sha256:")) and "error" not in page
    kinds = {r["type"]: r for r in records(wacz) if r["uri"] == page["url"]}
    assert set(kinds) == {"response", "request", "metadata"}
    assert b"the messages" in kinds["response"]["payload"]
    assert page["url"] in index_urls(wacz) and f"urn:screenshot:{page['url']}" in index_urls(wacz)
    assert "the messages" in page["text"]         # the text found by the listed address
    verified(run, wacz, pubkey)


# -- L2: a cookies.txt line without a name ------------------------------------------------
@pytest.mark.parametrize("browser", [False, True], ids=["http", "browser"])
def test_a_cookie_without_a_name_is_shown_nameless_and_its_value_nowhere(
        browser, run, key, pubkey, tmp_path):
    heard, site = Heard(), Site()
    site.add("/landing", handler=heard.handler)
    nameless, named, expired = token("nameless"), token("named"), token("expired")
    with serve(site) as server:
        (tmp_path / "cookies.txt").write_text(
            "# Netscape HTTP Cookie File\n"
            f"127.0.0.1\tFALSE\t/\tFALSE\t0\t\t{nameless}\n"           # `Set-Cookie: VALUE`, exported
            f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsess\t{named}\n"
            f"127.0.0.1\tFALSE\t/\tFALSE\t1000000000\t\t{expired}\n")  # expired: left out, named
        result, wacz = capture(run, key, tmp_path, server.url("/landing"), "--cookies",
                               tmp_path / "cookies.txt", *(["--browser"] if browser else []))
    assert result.code == 0, result
    # it went out as a browser sends it: the value alone, no `=`
    sent = heard.header("Cookie")
    assert sent and all(c.split("; ")[0] == nameless and f"sess={named}" in c for c in sent), sent
    assert secrets_in([nameless, named, expired], tmp_path / "store") == []
    landing, *_ = requests_to(wacz, "/landing")
    assert landing["http"].get_header("Cookie").startswith("[redacted Cookie ?=hmac-sha256:")
    credentials = evidence(wacz)["credentials"]
    assert ("Cookie", "?") in {(v["header"], v.get("cookie")) for v in credentials["redaction"]["values"]}
    assert credentials["identity"]["cookieNames"] == ["", "sess"]
    assert credentials["identity"]["expiredCookiesLeftOut"] == ["?"]
    verified(run, wacz, pubkey)


def test_a_response_that_echoes_a_secret_is_kept_as_sent_and_says_so(run, key, pubkey, tmp_path):
    """A rolling session: the server sends the very cookie value back (Set-Cookie). What a
    server sent is the evidence: kept, and its metadata record says it carries a secret."""
    session = token("sess")
    site = Site()
    site.add("/rolling", handler=lambda h: _send(h, 200, "<title>Welcome back</title>", {
        "Set-Cookie": f"sess={session}; Path=/; Max-Age=3600; HttpOnly"}))
    (tmp_path / "cookies.txt").write_text(f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsess\t{session}\n")
    with serve(site) as server:
        result, wacz = capture(run, key, tmp_path, server.url("/rolling"),
                               "--cookies", tmp_path / "cookies.txt")
    assert result.code == 0, result
    kept = {r["type"]: r for r in records(wacz) if r["uri"] == server.url("/rolling")}
    assert kept["response"]["http"].get_header("Set-Cookie").startswith(f"sess={session};")
    assert kept["request"]["http"].get_header("Cookie").startswith("[redacted Cookie sess=hmac-sha256:")
    said = b"secret-in-response: the response's head carries a value known to be secret"
    assert said in kept["metadata"]["payload"]
    verified(run, wacz, pubkey)


# -- L3: a yt-dlp extractor copies a cookie into its own header ---------------------------
# yt-dlp's TwitterIE sends the `ct0` cookie as x-csrf-token, instagram's X-CSRFToken; no
# extractor of yt-dlp's reaches 127.0.0.1, so a plugin extractor (tests/ytdlp_plugins) does
# what TwitterIE does, and the capture runs in a process that loads yt-dlp's plugins
# before anything lists the extractors (as yt-dlp's own command line does).
PLUGINS = HERE / "ytdlp_plugins"
WITH_PLUGINS = ("import sys, yt_dlp.plugins; yt_dlp.plugins.load_all_plugins(); "
                "from archive.cli import main; sys.exit(main(sys.argv[1:]))")


def test_a_cookie_an_extractor_sends_in_its_own_header_is_sealed_nowhere(key, pubkey, run, tmp_path):
    heard, site = Heard(), Site()
    site.html("/watch/42", "A post with a video", "<p>a post</p>")
    site.add("/api/video/42", handler=heard.handler)
    site.add("/files/42.mp4", VIDEO, content_type="video/mp4")
    auth, ct0 = token("auth"), token("ct0")
    (tmp_path / "cookies.txt").write_text(
        "# Netscape HTTP Cookie File\n"
        f"127.0.0.1\tFALSE\t/\tFALSE\t0\tauth_token\t{auth}\n127.0.0.1\tFALSE\t/\tFALSE\t0\tct0\t{ct0}\n")
    env = dict(os.environ, ARCHIVE_KEY_PASSPHRASE=PASSPHRASE,
               PYTHONPATH=os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    with serve(site) as server:
        done = subprocess.run(
            [sys.executable, "-c", WITH_PLUGINS, "capture", server.url("/watch/42"), "--media",
             "--cookies", str(tmp_path / "cookies.txt"), "--key", str(key), "--quiet",
             "--store", str(tmp_path / "store"), "--work-dir", str(tmp_path / "work")],
            env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert heard.header("x-csrf-token") == [ct0]        # the extractor did send it
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    assert [i["status"] for i in evidence(wacz)["media"]["items"]] == ["kept"]
    assert secrets_in([auth, ct0], tmp_path / "store") == []
    api, = requests_to(wacz, "/api/video/42")
    assert api["http"].get_header("x-csrf-token").lower().startswith("[redacted x-csrf-token hmac-sha256:")
    assert api["http"].get_header("Cookie").startswith("[redacted Cookie ")
    values = evidence(wacz)["credentials"]["redaction"]["values"]
    carried = [v for v in values if v["header"].lower() == "x-csrf-token"]
    assert carried and "known to be secret" in carried[0]["why"]
    verified(run, wacz, pubkey)


# -- L9: what a capture killed during a logged-in media download leaves on disk -----------
def test_a_capture_killed_while_yt_dlp_downloads_leaves_no_cookie_on_disk(
        run, key, pubkey, tmp_path, monkeypatch):
    from tests.killing import kill, start_capture

    site = Site()
    site.html("/talk", "A talk", '<video src="/media/talk.mp4"></video>')
    site.add("/media/talk.mp4", handler=trickle(VIDEO * 4, piece=2048, pause=0.05))
    session = token("sess")
    alice = profile(tmp_path / "alice", monkeypatch, {"session": session})
    work = tmp_path / "work"
    with serve(site) as server:
        process = start_capture([server.url("/talk"), "--media", "--profile", alice,
                                 "--key", key, "--store", tmp_path / "store", "--quiet"], work)
        try:
            deadline = time.monotonic() + 60
            # yt-dlp is downloading: it has the session's cookies
            while "/media/talk.mp4" not in site.requests:
                assert process.poll() is None and time.monotonic() < deadline, process.communicate()
                time.sleep(0.02)
        finally:
            kill(process)
        folder, = work.iterdir()
        assert secrets_in([session], work) == []
        assert stat.S_IMODE((folder / "media").stat().st_mode) == 0o700
        resumed = run("capture", "--resume", folder, "--quiet")
    assert resumed.code == 0, resumed
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    assert [i["status"] for i in evidence(wacz)["media"]["items"]] == ["kept"]
    talk = requests_to(wacz, "/media/talk.mp4")
    assert talk and all(r["http"].get_header("Cookie").startswith("[redacted Cookie session=") for r in talk)
    assert secrets_in([session], tmp_path / "store") == []
    verified(run, wacz, pubkey)


# -- the rule itself -----------------------------------------------------------------------
def test_known_values_are_redacted_in_any_header_the_target_and_the_body_but_short_ones_are_not():
    from archive.capture.redaction import KnownValues, Redaction

    known = KnownValues.of(["k3y-0f-th3-api"], ["c00kie-v4lue/+=", "1", "https://example.org/a",
                                                 "example.org", "/members/home"])
    # "1" is too short, an address (URL, host name, path) is the capture's own business
    assert (known.looked_for, known.too_short, known.addresses) == (2, 1, 3)
    redaction = Redaction.make(key=b"k" * 32, known=known)
    request = (b"POST /q?k=k3y-0f-th3-api&n=1 HTTP/1.1\r\nHost: example.org\r\nX-Trace: 1\r\n"
               b"X-Custom: prefix k3y-0f-th3-api suffix\r\n\r\n"
               b'{"a": "c00kie-v4lue\\/+=", "b": "c00kie-v4lue%2F%2B%3D", "n": 1}')
    redacted, found = redaction.redact(request, "http://example.org/q?k=k3y-0f-th3-api&n=1")
    head, body = redacted.split(b"\r\n\r\n")
    key_marker = f"(redacted:{redaction.digest(b'k3y-0f-th3-api')})".encode()
    cookie_marker = f"(redacted:{redaction.digest(b'c00kie-v4lue/+=')})".encode()
    assert head.startswith(b"POST /q?k=" + key_marker + b"&n=1 HTTP/1.1\r\n")
    assert b"X-Custom: [redacted X-Custom hmac-sha256:" in head and b"X-Trace: 1" in head
    assert json.loads(body) == {"a": cookie_marker.decode(), "b": cookie_marker.decode(), "n": 1}
    assert {(r.header, r.host, r.carried) for r in found} == {
        ("(request-target)", "example.org", False), ("X-Custom", None, True), ("(request-body)", None, False)}
    assert redaction.url("http://example.org/q?k=k3y-0f-th3-api") == \
        "http://example.org/q?k=" + key_marker.decode()
    # a cookie sent without a name: shown `?`, its value digested, never taken for a name
    cookie, found = redaction.redact(b"GET / HTTP/1.1\r\nCookie: n4meless-v4lue; a=b\r\n\r\n")
    assert cookie.endswith(f"Cookie: [redacted Cookie ?={redaction.digest(b'n4meless-v4lue')}; "
                           f"a={redaction.digest(b'b')}]\r\n\r\n".encode())
