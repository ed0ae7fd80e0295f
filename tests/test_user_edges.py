"""What a new user meets in the first hour: captures that fetch nothing, URLs with
credentials, mistyped options and stores. Every case a real CLI run against real local
servers and folders."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import stored_waczs
from tests.jobfiles import write_job
from tests.site import Site, SiteServer
from tests.warcs import member, pages, records


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_line_error(result, *words: str) -> None:
    """Exit 2, one line on stderr naming `words`, never an internal error or a traceback."""
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "internal error" not in result.err and "Traceback" not in result.err
    for word in words:
        assert word in lines[0], (word, lines[0])


# -- item 1: a capture whose pages all failed --------------------------------------

def test_a_capture_of_nothing_but_failures_is_stored_verifies_and_exits_1(run, key, pubkey, tmp_path):
    dead = f"http://127.0.0.1:{closed_port()}/statement"
    result = run("capture", dead, "--key", key, "--store", tmp_path / "s", "--work-dir",
                 tmp_path / "w", "--quiet", "--retries", "0", "--ignore-robots", "--json")
    assert result.code == 1, result
    out = json.loads(result.out)
    assert out["nothingCaptured"] is True and out["pages"] == 1
    assert out["failures"] == [{"url": dead, "error": out["failures"][0]["error"]}]
    assert "refused" in out["failures"][0]["error"].lower()
    assert "no page could be captured" in result.err and dead in result.err
    wacz = Path(stored_waczs(tmp_path / "s")[0])
    # what was tried is in the WARC: a metadata record saying what failed, when and why
    failure = next(r for r in records(wacz) if r["type"] == "metadata" and r["uri"] == dead)
    assert b"refused" in failure["payload"].lower()
    assert [p["url"] for p in pages(wacz)] == [dead] and "error" in pages(wacz)[0]

    text = run("verify", wacz, "--trust", pubkey)
    assert text.code == 0, text
    assert text.out.startswith("VERIFIED (RECORD OF FAILURES)")
    assert "no page could be captured" in text.out
    listed = text.out.split("failed fetches (recorded in the WARC, as evidence):", 1)[1]
    assert dead in listed.splitlines()[1]
    report = json.loads(run("verify", wacz, "--trust", pubkey, "--json").out)
    assert report["verdict"] == "VERIFIED" and report["qualifier"] == "RECORD OF FAILURES"
    assert report["capture"]["failures"][0]["url"] == dead
    assert next(c for c in report["checks"] if c["name"] == "index")["status"] == "pass"


def test_a_job_whose_seeds_all_failed_is_a_failed_run_and_notifies(run, key, tmp_path):
    heard = tmp_path / "heard.json"
    dead = f"http://127.0.0.1:{closed_port()}/"
    job = write_job(tmp_path, "dead", [dead], key, tmp_path / "store",
                    crawl={"retries": 0, "ignore_robots": True},
                    notify={"command": ["sh", "-c", f"cat > {heard}"], "when": "failures"})
    result = run("jobs", "run", job, "--quiet", "--json")
    assert result.code == 1, result
    outcome = json.loads(result.out)
    assert outcome["status"] == "failed" and "no page could be captured" in outcome["error"]
    assert outcome["capture"]["nothingCaptured"] is True           # stored all the same
    assert len(stored_waczs(tmp_path / "store")) == 1
    told = json.loads(heard.read_text())
    assert told["status"] == "failed" and dead in told["error"]


@pytest.mark.parametrize("option", [["--max-pages", "0"], ["--workers", "0"], ["--host-workers", "0"],
                                    ["--timeout", "0"], ["--max-time", "0s"]])
def test_options_that_would_capture_nothing_are_refused(run, tmp_path, option):
    result = run("capture", "http://127.0.0.1:9/", "--unsigned", "--store", tmp_path / "s", *option)
    one_line_error(result, option[0])
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("crawl, words", [({"max_pages": 0}, "max_pages"), ({"workers": 0}, "workers")])
def test_job_files_refuse_the_same_values_by_the_same_rule(run, key, tmp_path, crawl, words):
    job = write_job(tmp_path, "zero", ["http://127.0.0.1:9/"], key, tmp_path / "store", crawl=crawl)
    result = run("jobs", "check", job)
    assert result.code == 2 and words in result.out + result.err and "must be 1 or more" in result.out + result.err


# -- item 3: one definition of a page ------------------------------------------------

def test_every_command_counts_the_pages_pages_jsonl_lists(run, key, pubkey, site, tmp_path):
    """A redirect is fetched as a page but listed once, under where it led."""
    result = run("capture", site.url("/redirect"), site.url("/news/1"), "--key", key, "--store",
                 tmp_path / "s", "--work-dir", tmp_path / "w", "--quiet", "--json")
    assert result.code == 0, result
    captured = json.loads(result.out)["pages"]
    wacz = Path(stored_waczs(tmp_path / "s")[0])
    listed = pages(wacz)
    assert [p["url"] for p in listed].count(site.url("/about")) == 1 and len(listed) == 2
    evidence = json.loads(member(wacz, "evidence/capture.json"))
    verified = json.loads(run("verify", wacz, "--trust", pubkey, "--json").out)["capture"]["pages"]
    custody = json.loads(run("custody", "show", "--store", tmp_path / "s", "--json").out)["entries"]
    in_custody = next(e for e in custody if e["event"] == "captured")["details"]["pages"]
    assert captured == evidence["stats"]["pages"] == verified == in_custody == len(listed) == 2


# -- item 5: credentials in URLs ------------------------------------------------------

def test_a_url_with_credentials_becomes_a_login_and_the_password_is_never_shown(run, tmp_path):
    # issue 25: a seed's user:pw@ is an Authorization header (docs/logins.md), never kept
    result = run("capture", "http://alice:s3cr3t@127.0.0.1:9/page", "--unsigned",
                 "--store", tmp_path / "s", "--work-dir", tmp_path / "w")
    assert result.code == 1     # nothing listens there: stored as a record of the failure
    assert "s3cr3t" not in result.err + result.out and "alice" not in result.err + result.out
    for path in (tmp_path / "s").rglob("*"):
        assert not path.is_file() or b"s3cr3t" not in path.read_bytes(), path
    # a TSA's URL is sealed as it is: credentials in it are still refused
    tsa = run("capture", "http://127.0.0.1:9/", "--unsigned", "--tsa", "http://u:pw@127.0.0.1:9/tsr",
              "--store", tmp_path / "s")
    one_line_error(tsa, "user name or password")
    assert "pw@" not in tsa.err


def test_a_job_file_with_credentials_in_a_seed_keeps_them_out_of_its_seeds(run, key, tmp_path):
    from archive.jobs.spec import load_job

    job = write_job(tmp_path, "creds", ["http://bob:hunter2@127.0.0.1:9/"], key, tmp_path / "store")
    result = run("jobs", "check", job)
    assert result.code == 0, result
    assert "hunter2" not in result.out + result.err
    spec = load_job(job)
    assert spec.seeds == ["http://127.0.0.1:9/"] and list(spec.url_logins) == ["http://127.0.0.1:9"]


# -- items 6 and 8: errors a user must understand -------------------------------------

def test_argument_errors_are_one_line_and_say_what_is_wrong(run, tmp_path, monkeypatch):
    one_line_error(run("capture", "http://127.0.0.1:9/", "--unsigned", "--include", "(["),
                   "--include", "not a regular expression")
    one_line_error(run("capture", "http://127.0.0.1:9/", "--unsigned", "--delay", "-1s"),
                   "--delay", "must not be negative")
    one_line_error(run("capture", "http://127.0.0.1:9/", "--unsigned", "--max-bytes", "-5MB"),
                   "--max-bytes", "must not be negative")
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", "pw")
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    one_line_error(run("keys", "generate", "--out", afile), "is a file, not a folder")
    one_line_error(run("capture", "http://127.0.0.1:9/", "--unsigned", "--work-dir", afile,
                       "--store", tmp_path / "s"), "cannot make the work folder")
    assert afile.read_text() == "not a folder"


# -- item 7: a path that is not a store -----------------------------------------------

@pytest.mark.parametrize("args", [["ls", "{store}"], ["show", "20261125T160746Z-d05a8384", "--store", "{store}"],
                                  ["custody", "show", "--store", "{store}"],
                                  ["custody", "verify", "--store", "{store}"],
                                  ["verify", "20261125T160746Z-d05a8384", "--store", "{store}"],
                                  ["timestamp", "20261125T160746Z-d05a8384", "--tsa", "http://127.0.0.1:9/",
                                   "--store", "{store}"]])
def test_a_path_that_is_not_a_store_is_exit_2_everywhere_with_the_same_words(run, tmp_path, args):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    for store, why in (("missing", "no such folder"), ("a-file", "it is a file, not a folder"),
                       ("empty", "it holds none of a store's folders")):
        result = run(*[a.replace("{store}", str(tmp_path / store)) for a in args])
        assert result.code == 2, (store, result)
        assert f"{tmp_path / store} is not a store: {why}" in result.err, (store, result)
    assert not (tmp_path / "missing").exists() and not any((tmp_path / "empty").iterdir())


# -- item 2: a resume finishes a capture as it was started -----------------------------

def test_a_resume_keeps_the_store_and_key_it_was_started_with(run, key, pubkey, site, tmp_path, monkeypatch):
    store = tmp_path / "store5"
    store.mkdir()
    (store / "captures").write_text("in the way")    # the store refuses it: the work folder stays
    first = run("capture", site.url("/about"), "--key", key, "--store", store, "--operator", "ann",
                "--work-dir", tmp_path / "w", "--quiet")
    assert first.code == 2 and "archive capture --resume" in first.err, first
    work = next((tmp_path / "w").iterdir())
    (store / "captures").unlink()
    other_key = tmp_path / "k2"
    monkeypatch.chdir(tmp_path)     # where a default ./archive-store would be made

    moved = run("capture", "--resume", work, "--store", tmp_path / "elsewhere", "--quiet")
    one_line_error(moved, "--store", str(tmp_path / "elsewhere"), str(store), "--override-saved")
    assert run("keys", "generate", "--out", other_key).code == 0
    rekeyed = run("capture", "--resume", work, "--key", other_key / "signing-key.pem", "--quiet")
    one_line_error(rekeyed, "signing key")
    renamed = run("capture", "--resume", work, "--operator", "bob", "--quiet")
    one_line_error(renamed, "--operator bob", "ann")
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "archive-store").exists()

    # the command the failed capture printed, as it is: into the store it was started with
    resumed = run("capture", "--resume", work, "--quiet")
    assert resumed.code == 0, resumed
    wacz = Path(stored_waczs(store)[0])
    assert run("verify", wacz, "--trust", pubkey).code == 0
    assert json.loads(member(wacz, "evidence/capture.json"))["operator"] == "ann"
    assert not (tmp_path / "archive-store").exists()


def test_override_saved_finishes_a_capture_into_another_store(run, key, site, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "captures").write_text("in the way")
    assert run("capture", site.url("/about"), "--key", key, "--store", store,
               "--work-dir", tmp_path / "w", "--quiet").code == 2
    work = next((tmp_path / "w").iterdir())
    moved = run("capture", "--resume", work, "--store", tmp_path / "other", "--override-saved", "--quiet")
    assert moved.code == 0, moved
    assert len(stored_waczs(tmp_path / "other")) == 1
    assert run("capture", site.url("/"), "--override-saved", "--key", key).code == 2


# -- item 8: --trust on the folder `keys generate` made; every problem of a job file ---

def test_trust_takes_the_public_keys_of_a_key_folder_and_leaves_the_private_one(run, key, keydir, capture):
    wacz = capture("/about")
    result = run("verify", wacz, "--trust", keydir)
    assert result.code == 0, result
    assert "signing-key.pem is a private key; only the public keys" in result.err
    assert "PRIVATE" not in result.out


def test_jobs_check_reports_every_problem_in_one_pass(run, tmp_path):
    job = tmp_path / "many.toml"
    (tmp_path / "a-file").write_text("not a store")
    job.write_text('seeds = ["http://127.0.0.1:9/"]\nstore = "a-file"\nschedule = "0 * * * *"\n'
                   'every = "1h"\n[crawl]\nmax_pages = 0\n[signing]\nkey = "missing-key.pem"\n')
    result = run("jobs", "check", job)
    assert result.code == 2
    said = result.out + result.err
    assert "many.toml:2: store unreachable" in said and "is a file, not a folder" in said
    assert "many.toml:4: give either 'schedule' or 'every'" in said
    assert "many.toml:6: 'crawl.max_pages' must be 1 or more" in said
    assert "many.toml:8: signing key: key file not found" in said and "missing-key.pem" in said
    offline = run("jobs", "check", "--offline", job)
    assert offline.code == 2 and "signing key" not in offline.out + offline.err


# -- item 11: diff says first when two captures were made with different settings -------

def test_diff_says_at_the_top_that_the_settings_differed(run, key, site, tmp_path):
    for depth in ("0", "1"):
        assert run("capture", site.url("/"), "--depth", depth, "--scope", "host", "--key", key,
                   "--store", tmp_path / "s", "--work-dir", tmp_path / "w", "--quiet").code == 0
    earlier, later = stored_waczs(tmp_path / "s")
    text = run("diff", earlier, later)
    assert text.code == 0, text
    lines = text.out.splitlines()
    note = next(n for n, line in enumerate(lines) if line.startswith("Note: The two captures were made "
                                                                      "with different settings (depth 0, then 1)"))
    added = next(n for n, line in enumerate(lines) if line.strip().startswith("ADDED"))
    assert note < added, text.out
    same = run("diff", earlier, earlier, "--json")
    assert not any("different settings" in n for n in json.loads(same.out)["notes"])
    report = json.loads(run("diff", earlier, later, "--json").out)
    assert "depth 0, then 1" in report["notes"][0]
    assert report["earlier"]["settings"]["depth"] == 0 and report["later"]["settings"]["depth"] == 1


# -- item 9: ls and show read like the rest of the tool ---------------------------------

def test_ls_and_show_give_headers_the_sha256_capture_printed_and_no_python_dicts(run, key, site, tmp_path):
    made = run("capture", site.url("/about"), "--key", key, "--store", tmp_path / "s", "--work-dir",
               tmp_path / "w", "--json")     # no --quiet: no terminal, so no progress either
    assert made.code == 0 and made.err == "", made
    out = json.loads(made.out)
    listing = run("ls", tmp_path / "s")
    header, row = listing.out.splitlines()
    assert header.split() == ["CAPTURE", "CREATED", "SIZE", "SHA-256", "SIGNER", "SEEDS"]
    assert row.split()[0] == out["capture_id"] and out["sha256"] in row.split()
    assert header.index("SHA-256") == row.index(out["sha256"])         # aligned under its header
    assert not any(line != line.rstrip() for line in listing.out.splitlines())
    [as_json] = json.loads(run("ls", tmp_path / "s", "--json").out)
    assert as_json["sha256"] == out["sha256"] and as_json["id"] == out["capture_id"]
    shown = run("show", out["capture_id"], "--store", tmp_path / "s")
    assert shown.code == 0 and "{" not in shown.out and "'" not in shown.out, shown.out
    stats = next(line for line in shown.out.splitlines() if line.startswith("stats"))
    assert "pages 1," in stats and f"sha256    {out['sha256']}" in shown.out
    assert json.loads(run("show", out["capture_id"], "--store", tmp_path / "s", "--json").out)["stats"]["pages"] == 1


def _on_a_terminal(*args) -> tuple[int, str, bytes]:
    """Run `archive` with stderr on a pseudo-terminal: (exit code, stdout, what the terminal got)."""
    import os
    import pty
    import subprocess

    from tests.conftest import tool
    master, slave = pty.openpty()
    proc = subprocess.run([tool("archive"), *map(str, args)], stdout=subprocess.PIPE, stderr=slave,
                          timeout=120, text=True, env={**os.environ, "COLUMNS": "250"})
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:     # the terminal's other end is closed: all was read
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.returncode, proc.stdout, seen


def test_progress_shows_on_a_terminal_only_and_never_on_stdout(capture, pubkey):
    wacz = capture("/")
    code, out, terminal = _on_a_terminal("verify", wacz, "--trust", pubkey)
    assert code == 0 and out.startswith("VERIFIED") and "\x1b" not in out
    assert b"verifying " in terminal and b"100%" in terminal     # a bar, drawn then cleared
    code, out, terminal = _on_a_terminal("verify", wacz, "--trust", pubkey, "--quiet")
    assert code == 0 and out.startswith("VERIFIED") and terminal == b""


def test_a_mistyped_s3_prefix_is_no_store_either(run, key, site, s3, tmp_path):
    assert run("capture", site.url("/about"), "--key", key, "--store", s3.address("team-a"),
               "--work-dir", tmp_path / "w", "--quiet").code == 0
    assert run("ls", s3.address("team-a")).code == 0
    for args in (["ls", s3.address("team-b")], ["custody", "verify", "--store", s3.address("team-b")]):
        result = run(*args)
        assert result.code == 2 and f"{s3.address('team-b')} is not a store: nothing is stored under it" \
            in result.err, result
