"""What `archive serve` refuses: another address than loopback without a token, a request
without the token when one is set, a weak token file, a store without a catalog, a port
in use: each a one-line error (exit 2) or a refused request, never a traceback."""

from __future__ import annotations

import socket
import subprocess

import pytest
import requests

from archive import replayweb
from tests.conftest import BIN
from tests.serving import Served, free_port

TOKEN = "s3cret-token-for-the-tests-0123456789"


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("guard") / "store"
    store.mkdir()
    subprocess.run([str(BIN / "archive"), "index", "--store", str(store), "--quiet"], check=True, capture_output=True)
    return store


def serve(*args, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "archive"), "serve", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archive: error: ") and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_other_address_refused_without_token(empty_store):
    error = one_line_error(serve("--store", empty_store, "--bind", "0.0.0.0", "--port", free_port()))
    assert "--token-file" in error
    one_line_error(serve("--store", empty_store, "--bind", "192.0.2.1", "--port", free_port()))


def test_bad_starts(empty_store, tmp_path):
    weak = tmp_path / "weak"
    weak.write_text("short\n")
    assert "at least 16" in one_line_error(serve("--store", empty_store, "--token-file", weak, "--port", free_port()))
    assert "--token-file" in one_line_error(serve("--store", empty_store, "--token-file", tmp_path / "none"))
    bare = tmp_path / "bare"
    bare.mkdir()
    assert "archive index" in one_line_error(serve("--store", bare, "--port", free_port()))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        assert "cannot listen" in one_line_error(serve("--store", empty_store, "--port", busy.getsockname()[1]))
    assert "not a port" in one_line_error(serve("--store", empty_store, "--port", "http"))
    if replayweb.locate():      # the replay origin's port taken
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            taken = busy.getsockname()[1]
            assert "--replay-port" in one_line_error(serve("--store", empty_store, "--port", 0,
                                                           "--replay-port", taken))


def test_every_request_needs_the_token(empty_store, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    app = Served("--store", str(empty_store), "--token-file", str(token_file), "--port", "0")
    try:
        for path in ("/captures", "/search?q=x", "/static/app.css", "/captures/20261207T124229Z-fe0c4772/wacz"):
            refused = requests.get(app.url + path, timeout=30, allow_redirects=False)
            assert refused.status_code == 401 and "token" in refused.text
        wrong = requests.get(app.url + "/captures", headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"}, timeout=30)
        assert wrong.status_code == 401
        bearer = requests.get(app.url + "/captures", headers={"Authorization": "Bearer " + TOKEN}, timeout=30)
        assert bearer.status_code == 200 and "Captures" in bearer.text
        # a link with the token sets an HttpOnly cookie and drops the token from the address
        session = requests.Session()
        link = session.get(f"{app.url}/captures?token={TOKEN}&verdict=verified", timeout=30, allow_redirects=False)
        assert link.status_code == 303 and link.headers["location"] == "/captures?verdict=verified"
        assert "HttpOnly" in link.headers["set-cookie"] and "SameSite=Strict" in link.headers["set-cookie"]
        assert session.get(app.url + "/captures", timeout=30).status_code == 200
        arabic = requests.get(f"{app.url}/search?q=%D8%A7%D9%84%D9%85%D8%B1%D8%B5%D8%AF&token={TOKEN}", timeout=30,
                              allow_redirects=False)
        assert arabic.status_code == 303 and arabic.headers["location"] == "/search?q=%D8%A7%D9%84%D9%85%D8%B1%D8%B5%D8%AF"
        if app.replay:      # the replay origin asks for it too
            assert requests.get(app.replay + "/replay/ui.js", timeout=30).status_code == 401
            assert session.get(app.replay + "/replay/ui.js", timeout=30).status_code == 200
    finally:
        assert "Traceback" not in app.stop()
