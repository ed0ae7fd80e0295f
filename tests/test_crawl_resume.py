"""Resume: a crawl killed with SIGKILL (or a seal that failed) is finished by
`archive capture --resume CAPTURE_DIR`: no page lost, none written twice, and the
sealed result verifies."""

from __future__ import annotations

import collections
import json
import signal
from pathlib import Path

from tests.conftest import stored_waczs
from tests.killing import capture_killed_when, group_lines
from tests.site import SiteServer, generated_site
from tests.stopped_seal import capture_stopped_in_seal, holding_tsa
from tests.warcs import pages, records


def _page_urls(wacz: Path) -> list[str]:
    return [p["url"] for p in pages(wacz)]


def _stored_twice(wacz: Path) -> list[str]:
    counts = collections.Counter(
        r["uri"] for r in records(wacz)
        if r["type"] in ("response", "revisit")
    )
    return [uri for uri, n in counts.items() if n > 1]


def test_kill_9_during_crawl_then_resume(run, key, pubkey, tmp_path):
    site = generated_site(60)
    site.delay = 0.03       # a crawl of a few seconds, so it can be killed half way
    with SiteServer(site) as server:
        seed = server.url("/")
        common = ["--depth", "10", "--scope", "host", "--workers", "4", "--key", key,
                  "--store", tmp_path / "store", "--quiet"]
        journal = capture_killed_when([seed, *common], tmp_path / "w",
                                      lambda journal: group_lines(journal) >= 40, timeout=60)
        work = journal.parent
        assert b'"t":"end"' not in journal.read_bytes()
        assert stored_waczs(tmp_path / "store") == []

        resumed = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "store", "--quiet")
        assert resumed.code == 0, resumed
        assert not work.exists(), "the work folder is removed once the capture is stored"
        wacz = Path(stored_waczs(tmp_path / "store")[0])

        whole = run("capture", seed, *common, "--work-dir", tmp_path / "w2")
        assert whole.code == 0, whole
        reference = Path([w for w in stored_waczs(tmp_path / "store") if Path(w) != wacz][0])

    assert run("verify", wacz, "--trust", pubkey).code == 0
    urls = _page_urls(wacz)
    assert len(urls) == len(set(urls)) == 60
    assert set(urls) == set(_page_urls(reference))
    assert _stored_twice(wacz) == []
    evidence = json.loads(__import__("zipfile").ZipFile(wacz).read("evidence/capture.json"))
    assert len(evidence["resumed"]) == 1 and evidence["stats"]["pages"] == 60
    assert "cutBack" not in evidence, "a kill loses nothing journaled"
    warcinfos = [r["payload"].decode() for r in records(wacz) if r["type"] == "warcinfo"]
    assert any("resumed: " in w for w in warcinfos)


def test_half_written_record_and_journal_line_are_cut_off_on_resume(run, key, pubkey, tmp_path):
    """The state a kill leaves at its worst moment, made exactly: the container ends in
    a partial record and the journal in a partial line."""
    site = generated_site(12)
    with SiteServer(site) as server:
        seed = server.url("/")
        args = ["--depth", "10", "--scope", "host", "--key", key, "--store", tmp_path / "store",
                "--work-dir", tmp_path / "w", "--quiet", "--keep-local"]
        first = run("capture", seed, *args)
        assert first.code == 0
        reference = Path(stored_waczs(tmp_path / "store")[0])

        # rebuild an interrupted state from a finished work folder: cut its journal after
        # 20 groups, and its container after the WARC position that line names
        work = next((tmp_path / "w").iterdir())
        capture_id = work.name
        lines = (work / "crawl.jsonl").read_text().splitlines(keepends=True)
        groups = [i for i, line in enumerate(lines) if '"t":"group"' in line]
        kept = lines[: groups[19] + 1]
        position = json.loads(kept[-1])["warc"]
        (work / "crawl.jsonl").write_text("".join(kept) + lines[groups[20]][:40])
        sealed = work / f"{capture_id}.wacz"
        import zipfile
        with zipfile.ZipFile(sealed) as zf:
            info = zf.getinfo(f"archive/{position[0]}")
            data_start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        data = sealed.read_bytes()
        open_path = work / f"{capture_id}.wacz.open"
        # the next record, a large one, half written after the last one the journal knows
        # (longer than all that is left to write, so it would show if it were not cut off)
        half = b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8192
        open_path.write_bytes(data[: data_start + position[1]] + half)
        sealed.chmod(0o644)
        sealed.unlink()
        (tmp_path / "store2").mkdir()

        resumed = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "store2",
                      "--override-saved", "--quiet")
        assert resumed.code == 0, resumed
    wacz = Path(stored_waczs(tmp_path / "store2")[0])
    assert run("verify", wacz, "--trust", pubkey).code == 0
    assert sorted(_page_urls(wacz)) == sorted(_page_urls(reference))
    assert _stored_twice(wacz) == []


def test_failed_seal_is_resealed_on_resume(run, key, pubkey, tmp_path, tsa_creds, tsa_ca):
    """A capture killed in its seal (signed, waiting for its TSA) is sealed again by
    --resume, from its work folder alone: nothing is fetched again."""
    site = generated_site(5)
    with SiteServer(site) as server, holding_tsa(tsa_creds) as tsa:
        killed = capture_stopped_in_seal([server.url("/"), "--depth", "3", "--scope", "host", "--key", key,
                                          "--store", tmp_path / "store", "--quiet"],
                                         tmp_path / "w", tsa, signal.SIGKILL)
        assert killed.returncode == -signal.SIGKILL, killed
        work = next((tmp_path / "w").iterdir())
        assert list(work.glob("*.wacz.open")) and stored_waczs(tmp_path / "store") == []
        requests_before = len(server.site.requests)

        tsa.mode = "ok"     # the TSA is back: the resume, asking it as saved, gets its token
        resumed = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "store", "--quiet")
        assert resumed.code == 0, resumed
        assert len(server.site.requests) == requests_before, "a finished crawl is not crawled again"
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    verified = run("verify", wacz, "--json", "--trust", pubkey, "--trust-tsa", tsa_ca)
    assert verified.code == 0, verified
    assert json.loads(verified.out)["time"]["trusted"] is True    # the token the resume asked for
    assert len(_page_urls(wacz)) == 5 and _stored_twice(wacz) == []
    evidence = json.loads(__import__("zipfile").ZipFile(wacz).read("evidence/capture.json"))
    assert "cutBack" not in evidence and evidence["stopReason"] is None


def test_a_journal_line_no_crawl_wrote_is_a_one_line_error(run, key, tmp_path):
    with SiteServer(generated_site(3)) as server:
        failed = run("capture", server.url("/"), "--key", key, "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "w", "--quiet", "--keep-local")
        assert failed.code == 0, failed
    work = next((tmp_path / "w").iterdir())
    (work / f"{work.name}.wacz").rename(work / f"{work.name}.wacz.open")   # as if never sealed
    with open(work / "crawl.jsonl", "a") as fh:
        fh.write('{"t":"robots","url":"http://127.0.0.1:9/robots.txt"}\n')
    resumed = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "store2", "--override-saved")
    assert resumed.code == 2 and resumed.err.count("\n") == 1
    assert "line" in resumed.err and "not a crawl journal line" in resumed.err


def test_resume_errors_are_one_line(run, key, tmp_path):
    missing = run("capture", "--resume", tmp_path / "nothing", "--key", key)
    assert missing.code == 2 and "no such capture work folder" in missing.err
    (tmp_path / "empty").mkdir()
    empty = run("capture", "--resume", tmp_path / "empty", "--key", key)
    assert empty.code == 2 and "not a capture work folder" in empty.err
    both = run("capture", "http://127.0.0.1:9/", "--resume", tmp_path / "empty", "--key", key)
    assert both.code == 2 and "not both" in both.err


def test_sealed_but_not_stored_is_stored_on_resume(run, key, pubkey, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "captures").write_text("in the way")    # the store cannot take the capture
    with SiteServer(generated_site(3)) as server:
        failed = run("capture", server.url("/"), "--depth", "2", "--scope", "host", "--key", key,
                     "--store", store, "--work-dir", tmp_path / "w", "--quiet")
        assert failed.code == 2, failed
        work = next((tmp_path / "w").iterdir())
        assert list(work.glob("*.wacz")), "the sealed capture is kept in the work folder"
        requests_before = len(server.site.requests)
        (store / "captures").unlink()
        wrong = run("capture", "--resume", work, "--unsigned", "--store", store, "--quiet")
        assert wrong.code == 2 and "signing key unsigned (it was started with" in wrong.err
        wrong = run("capture", "--resume", work, "--unsigned", "--override-saved", "--quiet")
        assert wrong.code == 2 and "already sealed" in wrong.err
        resumed = run("capture", "--resume", work, "--key", key, "--store", store, "--quiet")
        assert resumed.code == 0, resumed
        assert len(server.site.requests) == requests_before
    wacz = Path(stored_waczs(store)[0])
    assert run("verify", wacz, "--trust", pubkey).code == 0
    assert len(_page_urls(wacz)) == 3


def _slow_site(pages: int):
    site = generated_site(pages)
    site.delay = 0.03       # a crawl of a few seconds, so it can be killed half way
    return site


def _killed_after(server: SiteServer, key: str, tmp_path: Path, groups: int,
                  more: tuple = ()) -> Path:
    """The journal of a crawl of `server` killed once it journaled `groups` groups."""
    args = [server.url("/"), "--depth", "10", "--scope", "host", "--workers", "2",
            "--key", key, "--store", tmp_path / "store", "--quiet", *more]
    return capture_killed_when(args, tmp_path / "w", lambda j: group_lines(j) >= groups, timeout=60)


def test_captured_data_changed_on_disk_is_not_resumed_into_a_sealed_capture(run, key, tmp_path):
    """A byte of kept WARC data that changed after it was journaled (a disk error, power
    lost before the data reached the disk) must not be sealed and signed as if captured."""
    with SiteServer(_slow_site(30)) as server:
        journal = _killed_after(server, key, tmp_path, groups=20)
        work = journal.parent
        container = next(work.glob("*.wacz.open"))
        data = bytearray(container.read_bytes())
        data[len(data) // 3] ^= 0x01           # inside the WARC data the journal vouches for
        container.write_bytes(bytes(data))
        resumed = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "store", "--quiet")
    assert resumed.code == 2, resumed
    assert "changed on disk" in resumed.err and resumed.err.count("\n") == 1
    assert stored_waczs(tmp_path / "store") == []
    assert work.exists(), "what was captured is kept"


def test_a_capture_stored_before_its_run_stopped_is_found_on_resume(run, key, pubkey, tmp_path):
    """A run stopped after its upload was confirmed, before it cleaned up (here: a work
    folder kept with --keep-local): resuming finds the very bytes already stored and
    finishes, instead of failing on a taken key forever. Another file under the capture's
    id is never taken for it."""
    store = tmp_path / "store"
    with SiteServer(generated_site(3)) as server:
        first = run("capture", server.url("/"), "--key", key, "--store", store,
                    "--work-dir", tmp_path / "w", "--keep-local", "--quiet", "--json")
        assert first.code == 0, first
    out = json.loads(first.out)
    work, stored = Path(out["work_dir"]), Path(out["address"])
    again = run("capture", "--resume", work, "--key", key, "--store", store, "--json")
    assert again.code == 0, again
    assert json.loads(again.out)["sha256"] == out["sha256"]
    assert stored_waczs(store) == [str(stored)]
    assert run("verify", stored, "--trust", pubkey).code == 0

    stored.unlink()                          # (a hard link of the kept copy: replaced, not written)
    stored.write_bytes(b"not the capture")             # another file under the same id
    refused = run("capture", "--resume", work, "--key", key, "--store", store, "--quiet")
    assert refused.code == 2 and "already exists" in refused.err, refused
    assert (work / f"{out['capture_id']}.wacz").exists()   # the only good copy is kept


def test_power_loss_resume_cuts_back_to_what_the_disk_kept(run, key, pubkey, tmp_path):
    """A power loss keeps less than was journaled: the WARC data ends partway through
    the records of a journaled group, and the journal ends in a block of zeros. The
    groups whose records were lost are fetched again (said in the output and in the
    evidence); none is lost, none is there twice, and the result verifies."""
    with SiteServer(_slow_site(30)) as server:
        journal = _killed_after(server, key, tmp_path, groups=24)
        work = journal.parent
        lines = journal.read_bytes().splitlines(keepends=True)
        groups = [i for i, line in enumerate(lines) if b'"t":"group"' in line]
        position = json.loads(lines[groups[11]])["warc"]
        after = len(groups) - 12
        container = next(work.glob("*.wacz.open"))
        data = container.read_bytes()
        name = f"archive/{position[0]}".encode()
        data_start = data.index(name) + len(name)     # the first member: no zip64 extra
        with open(container, "r+b") as fh:
            fh.truncate(data_start + position[1] + 300)   # the next group's records, partly
        with open(journal, "ab") as fh:
            fh.write(b"\x00" * 700 + b"\n" + lines[groups[-1]])

        resumed = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "store")
        assert resumed.code == 0, resumed
        assert f"cut back {after} fetches" in resumed.out
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    verified = run("verify", wacz, "--trust", pubkey)
    assert verified.code == 0
    assert f"1 time after the capturing process stopped; {after} fetches done again" in verified.out
    report = json.loads(run("verify", wacz, "--trust", pubkey, "--json").out)
    assert report["capture"]["resumed"] == 1 and report["capture"]["redone"] == after
    urls = _page_urls(wacz)
    assert len(urls) == len(set(urls)) == 30
    assert _stored_twice(wacz) == []
    evidence = json.loads(__import__("zipfile").ZipFile(wacz).read("evidence/capture.json"))
    assert [c["groups"] for c in evidence["cutBack"]] == [after]
    assert evidence["cutBack"][0]["warc"] == position
    assert evidence["stats"]["pages"] == 30


def test_max_time_is_for_the_whole_crawl_across_resumes(run, key, tmp_path):
    """--max-time bounds the crawl, not each run of it: a resume gets what is left."""
    from archive.capture.journal import CrawlState

    state = CrawlState()
    for line in ({"t": "group", "url": "a", "elapsed": 4.5}, {"t": "group", "url": "b", "elapsed": 5.0},
                 {"t": "resume"}, {"t": "group", "url": "c", "elapsed": 3.0}):
        state.apply(line)
    assert state.crawl_time == 8.0

    with SiteServer(_slow_site(30)) as server:
        journal = _killed_after(server, key, tmp_path, groups=10, more=["--max-time", "10m"])
        # as if this run had crawled for 10 minutes already
        lines = journal.read_text().splitlines(keepends=True)
        last = max(i for i, line in enumerate(lines) if '"t":"group"' in line)
        lines[last] = json.dumps({**json.loads(lines[last]), "elapsed": 600.0}) + "\n"
        journal.write_text("".join(lines))
        requests_before = len(server.site.requests)
        resumed = run("capture", "--resume", journal.parent, "--key", key, "--store", tmp_path / "store")
        assert resumed.code == 0, resumed
        assert "stopped  max-time reached" in resumed.out
        assert len(server.site.requests) == requests_before, "no time was left to fetch anything"
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    evidence = json.loads(__import__("zipfile").ZipFile(wacz).read("evidence/capture.json"))
    assert evidence["stopReason"] == "max-time" and evidence["notFetched"]


def test_a_crawl_whose_frontier_spills_to_disk_resumes_after_kill_9(run, key, pubkey, tmp_path, monkeypatch):
    """Past the memory bound (20 here, 100,000 by default) URLs seen, queued items and
    payload digests go to SQLite in the spool folder; a kill -9 loses none of them: the
    resume rebuilds them from the journal."""
    monkeypatch.setenv("ARCHIVE_CRAWL_MEMORY", "20")
    site = generated_site(120)          # 720 URLs: pages, two images, a script, a stylesheet
    site.delay = 0.005
    with SiteServer(site) as server:
        seed = server.url("/")
        common = ["--depth", "10", "--scope", "host", "--workers", "4", "--key", key,
                  "--store", tmp_path / "store", "--quiet"]
        spilled = []

        def far_enough(journal: Path) -> bool:
            spilled.append((journal.parent / "spool" / "frontier.sqlite").exists())
            return any(spilled) and group_lines(journal) >= 200
        journal = capture_killed_when([seed, *common], tmp_path / "w", far_enough, timeout=90)
        work = journal.parent
        assert b'"t":"end"' not in journal.read_bytes() and any(spilled)

        resumed = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "store", "--quiet")
        assert resumed.code == 0, resumed
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    assert run("verify", wacz, "--trust", pubkey).code == 0
    urls = _page_urls(wacz)
    assert len(urls) == len(set(urls)) == 120
    assert _stored_twice(wacz) == []
    fetched = {r["uri"] for r in records(wacz) if r["type"] in ("response", "revisit")}
    assert {server.url(path) for path in site.routes} <= fetched      # all 720: nothing lost


def test_kill_9_while_links_are_read_resumes_without_fetching_the_page_again(run, key, pubkey, tmp_path):
    """A page is journaled as soon as it is fetched, before its links are read (60,000
    nested elements take seconds): killed meanwhile, the resume reads the page back from
    the WARC data, follows its links, and writes its metadata record once."""
    from tests.site import Site

    depth = 60_000
    site = Site()
    site.html("/", "Deep", "<div>" * depth + '<img src="/deep.png"><a href="/next">next</a>' + "</div>" * depth)
    site.add("/deep.png", b"\x89PNG deep", content_type="image/png")
    site.html("/next", "Next", "ok")
    with SiteServer(site) as server:
        seed = server.url("/")
        args = ["--depth", "1", "--scope", "host", "--key", key, "--store", tmp_path / "store",
                "--quiet", "--retries", "0"]

        def reading_links(journal: Path) -> bool:
            data = journal.read_bytes()
            return b'"linksPending"' in data and b'"kind":"links"' not in data
        journal = capture_killed_when([seed, *args], tmp_path / "w", reading_links, timeout=90)
        assert b'"kind":"links"' not in journal.read_bytes(), "killed after the links were read"
        assert site.requests.count("/") == 1 and "/next" not in site.requests

        resumed = run("capture", "--resume", journal.parent, "--key", key, "--store", tmp_path / "store",
                      "--quiet")
        assert resumed.code == 0, resumed
    assert site.requests.count("/") == 1, "the page was fetched again"
    assert "/next" in site.requests and "/deep.png" in site.requests
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    assert run("verify", wacz, "--trust", pubkey).code == 0
    entries = {p["url"]: p for p in pages(wacz)}
    assert set(entries) == {seed, server.url("/next")} and entries[seed]["title"] == "Deep"
    metadata = [r for r in records(wacz) if r["type"] == "metadata" and r["uri"] == seed]
    assert len(metadata) == 1
    assert b"outlink: " + server.url("/next").encode() in metadata[0]["payload"]
    assert b"links-cut: elements nested deeper than 512" in metadata[0]["payload"]
    assert b"ip-address: 127.0.0.1" in metadata[0]["payload"]
    assert _stored_twice(wacz) == []
