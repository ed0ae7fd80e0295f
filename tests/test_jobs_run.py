"""`archive jobs run`: a job run twice against a changing site; notifications."""

import http.server
import json
import re
import signal
import time
from pathlib import Path

import pytest

from tests.jobfiles import break_store, change_site, changing_site, mend_store, run_records, start_run, wait_for, write_job
from tests.site import SiteServer, serving_thread, slow
from tests.warcs import member, records


@pytest.fixture
def changing():
    with SiteServer(changing_site()) as server:
        yield server


def run_json(run, *args):
    result = run("jobs", "run", *args, "--json")
    assert result.code == 0, result
    return json.loads(result.out)


def test_second_run_reports_exactly_the_edit_the_takedown_and_the_new_page(run, key, pubkey, changing, tmp_path):
    store = tmp_path / "store"
    job = write_job(tmp_path, "statements", [changing.url("/")], key, store)
    first = run_json(run, job)
    assert first["status"] == "ok" and first["capture"]["pages"] == 3
    assert first["previous_capture"] is None and first["changes"] is None

    change_site(changing.site)
    time.sleep(1.1)   # capture times have whole seconds: let `diff` tell which came first
    second = run_json(run, job)
    assert second["previous_capture"] == first["capture"]["capture_id"]
    changes = second["changes"]
    found = {(c["kind"], c["url"]) for c in changes["changes"]}
    assert found == {
        ("changed", changing.url("/statement")),
        ("removed", changing.url("/old")),
        ("added", changing.url("/new")),
    }
    assert changes["counts"]["unchanged"] == 1 and changes["uncertain"] == []
    by_kind = {c["kind"]: c["finding"] for c in changes["changes"]}
    assert "taken down between" in by_kind["removed"] and "HTTP 404" in by_kind["removed"]
    assert f"The page {changing.url('/statement')} changed between" in by_kind["changed"]

    # `archive diff` says the same from the two stored captures, in either order.
    ids = first["capture"]["capture_id"], second["capture"]["capture_id"]
    for pair in (ids, ids[::-1]):
        result = run("diff", *pair, "--store", store, "--json")
        assert result.code == 0, result
        assert {(c["kind"], c["url"]) for c in json.loads(result.out)["changes"]} == found
    text = run("diff", *ids, "--store", store)
    assert "1 changed, 1 removed, 1 added; 1 unchanged" in text.out
    assert text.out.count("CHANGED") == 1 and "archive verify" in text.out

    # Both captures are ordinary sealed captures that verify.
    for outcome in (first, second):
        verified = run("verify", outcome["capture"]["address"], "--trust", pubkey)
        assert verified.code == 0, verified

    # The store keeps each run's start and result.
    assert len(run_records(store, "statements", "result")) == 2
    status = run("jobs", "status", tmp_path, "--json")
    last = json.loads(status.out)[0]["last_run"]
    assert last["capture_id"] == second["capture"]["capture_id"] and last["status"] == "ok"
    assert last["changes"] == {"changed": 1, "removed": 1, "redirected": 0, "added": 1,
                               "unchanged": 1, "uncertain": 0, "transferOnly": 0}
    shown = run("jobs", "status", tmp_path).out
    assert "changes    1 changed, 1 removed, 1 added, 1 unchanged\n" in shown


def test_second_run_stores_revisits_for_unchanged_payloads(run, key, pubkey, changing, tmp_path):
    store = tmp_path / "store"
    job = write_job(tmp_path, "revisits", [changing.url("/")], key, store)
    first = run_json(run, job)
    assert first["capture"]["revisits"] == 0 and first["dedup_against"] is None
    change_site(changing.site)
    second = run_json(run, job)
    assert second["dedup_against"] == first["capture"]["capture_id"]
    before = {r["uri"]: r for r in records(first["capture"]["address"]) if r["type"] == "response"}
    after = records(second["capture"]["address"])
    types = {(r["uri"], r["type"]) for r in after}
    assert (changing.url("/statement"), "response") in types
    assert (changing.url("/new"), "response") in types
    # The unchanged home page and logo point at their full copies in the first capture.
    for url in (changing.url("/"), changing.url("/logo.png")):
        revisit = next(r for r in after if r["uri"] == url)
        assert revisit["type"] == "revisit"
        assert revisit["headers"]["WARC-Refers-To"] == before[url]["headers"]["WARC-Record-ID"]
        assert revisit["headers"]["WARC-Payload-Digest"] == before[url]["headers"]["WARC-Payload-Digest"]
    assert second["capture"]["revisits"] == 2
    evidence = json.loads(member(second["capture"]["address"], "evidence/capture.json"))
    assert evidence["dedupAgainst"]["capture"] == first["capture"]["capture_id"]
    assert run("verify", second["capture"]["address"], "--trust", pubkey).code == 0


def test_with_dedup_off_every_payload_is_stored_in_full(run, key, changing, tmp_path):
    job = write_job(tmp_path, "full", [changing.url("/")], key, tmp_path / "store",
                    crawl={"depth": 2, "scope": "prefix", "dedup": False})
    run_json(run, job)
    second = run_json(run, job)
    assert second["dedup_against"] is None and second["capture"]["revisits"] == 0
    assert "revisit" not in {r["type"] for r in records(second["capture"]["address"])}
    assert second["changes"]["counts"]["unchanged"] == 3


def test_a_previous_capture_that_cannot_be_read_costs_the_revisits_not_the_capture(run, key, changing, tmp_path):
    job = write_job(tmp_path, "damaged", [changing.url("/")], key, tmp_path / "store")
    first = run_json(run, job)
    stored = Path(first["capture"]["address"])
    stored.chmod(0o644)
    stored.write_bytes(b"damaged in the store")
    result = run("jobs", "run", job, "--json")
    assert result.code == 1, result       # stored, but a person must look at the store
    outcome = json.loads(result.out)
    assert outcome["status"] == "ok" and outcome["capture"]["pages"] == 3
    assert outcome["dedup_against"] is None and outcome["capture"]["revisits"] == 0
    assert [p for p in outcome["problems"] if "payloads stored in full" in p
            and first["capture"]["capture_id"] in p and "cannot be read" in p]
    assert "could not compare" in outcome["changes"]["error"]


def test_a_job_stores_into_s3_with_retention_and_its_revisits_point_into_s3(run, key, pubkey, changing,
                                                                         s3, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")        # the job file names the endpoint
    job = write_job(tmp_path, "bucketed", [changing.url("/")], key, tmp_path / "unused",
                    extra_top={"store": s3.address("jobs"), "endpoint_url": s3.endpoint},
                    retention={"retain_days": 2, "lock_mode": "COMPLIANCE", "legal_hold": True})
    first = run_json(run, job)
    assert first["capture"]["address"].startswith(f"s3://{s3.bucket}/jobs/captures/")
    assert first["capture"]["lock"].startswith("COMPLIANCE until ") and "legal hold" in first["capture"]["lock"]
    change_site(changing.site)
    second = run_json(run, job)
    assert second["dedup_against"] == first["capture"]["capture_id"] and second["capture"]["revisits"] == 2
    assert second["changes"]["counts"]["changed"] == 1
    assert any(k.startswith("jobs/jobs/bucketed/runs/") for k in s3.keys())   # run records in the bucket
    assert run("verify", second["capture"]["address"], "--trust", pubkey,
               "--endpoint-url", s3.endpoint).code == 0
    status = json.loads(run("jobs", "status", job, "--json").out)[0]
    assert status["last_run"]["capture_id"] == second["capture"]["capture_id"]


def test_a_browser_job_loads_its_pages_in_chromium(run, key, pubkey, changing, tmp_path):
    job = write_job(tmp_path, "rendered", [changing.url("/statement")], key, tmp_path / "store",
                    crawl={"browser": True, "viewport": "800x600", "wait_until": "domcontentloaded"})
    outcome = run_json(run, job)
    wacz = outcome["capture"]["address"]
    uris = {(r["type"], r["uri"]) for r in records(wacz)}
    assert ("resource", f"urn:screenshot:{changing.url('/statement')}") in uris
    options = json.loads(member(wacz, "evidence/capture.json"))["options"]["browser"]
    assert (options["viewport_width"], options["viewport_height"], options["wait"]) == (800, 600, "domcontentloaded")
    assert run("verify", wacz, "--trust", pubkey).code == 0


def unusable_leftover(tmp_path, job: str) -> Path:
    """A capture folder an earlier run left unsealed that cannot be finished (no journal,
    no request, a damaged container)."""
    folder = tmp_path / "work" / "jobs" / job / "20250101T000000Z-0badf00d"
    folder.mkdir(parents=True)
    (folder / f"{folder.name}.wacz.open").write_bytes(b"PK\x03\x04 damaged")
    return folder


def test_a_leftover_that_cannot_be_finished_is_kept_and_never_blocks_a_capture(run, key, changing, tmp_path):
    store = tmp_path / "store"
    folder = unusable_leftover(tmp_path, "stuck")
    before = (folder / f"{folder.name}.wacz.open").read_bytes()
    # With resume off it is only reported, and kept.
    job = write_job(tmp_path, "stuck", [changing.url("/")], key, store, run={"resume": False})
    off = run_json(run, job)
    assert off["resumed"] is False and off["capture"]["pages"] == 3
    assert off["unfinished"] == [{"capture_id": folder.name, "path": str(folder),
                                  "state": "interrupted before it was sealed"}]
    # With resume on (the default) finishing it is tried; it fails, is reported, and the
    # run takes its capture all the same.
    job = write_job(tmp_path, "stuck", [changing.url("/")], key, store)
    result = run("jobs", "run", job, "--json")
    assert result.code == 1, result
    on = json.loads(result.out)
    assert on["status"] == "ok" and on["resumed"] is False and on["capture"]["pages"] == 3
    assert on["capture"]["capture_id"] != folder.name
    assert "not a capture work folder" in on["unfinished"][0]["not_resumed"]
    assert [p for p in on["problems"] if folder.name in p and "could not be finished" in p]
    assert (folder / f"{folder.name}.wacz.open").read_bytes() == before
    text = run("jobs", "run", job)
    assert text.code == 1
    assert f"left     {folder}: an earlier run's capture, interrupted before it was sealed; " \
           "it could not be finished" in text.out
    assert "could not be finished" in text.err


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.headers["Content-Type"], json.loads(body)))
        status = 200 if self.path == "/ok" else 500
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    received: list = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Hook,), {"received": received}))
    thread = serving_thread(server)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_notification_by_webhook_and_command_carries_the_outcome(run, key, changing, tmp_path, webhook):
    base, received = webhook
    out = tmp_path / "notified.json"
    store = tmp_path / "store"
    command = ["sh", "-c", f"cat > {out}"]
    job = write_job(tmp_path, "hooked", [changing.url("/")], key, store,
                    notify={"webhook": f"{base}/ok", "command": command})
    first = run_json(run, job)
    change_site(changing.site)
    second = run_json(run, job)
    assert first["notify"] == {"webhook": {"ok": True, "status": 200}, "command": {"ok": True, "exit": 0}}
    assert [r[0] for r in received] == ["application/json"] * 2
    assert received[1][1]["capture"]["capture_id"] == second["capture"]["capture_id"]
    assert received[1][1]["changes"]["counts"]["changed"] == 1
    assert json.loads(out.read_text())["run_id"] == second["run_id"]
    notify_records = run_records(store, "hooked", "notify")
    assert len(notify_records) == 2


def test_failed_notification_is_reported_and_the_capture_still_counts(run, key, changing, tmp_path, webhook):
    base, received = webhook
    job = write_job(tmp_path, "badhook", [changing.url("/")], key, tmp_path / "store",
                    notify={"webhook": f"{base}/fail", "command": ["/nonexistent/notify"]})
    result = run("jobs", "run", job, "--quiet")
    assert result.code == 0, result
    assert "notification by webhook failed: the webhook answered HTTP 500" in result.err
    assert "command not found: /nonexistent/notify" in result.err
    assert len(received) == 4   # the first try and three retries with backoff


def test_notify_when_changes_stays_quiet_without_changes(run, key, changing, tmp_path, webhook):
    base, received = webhook
    job = write_job(tmp_path, "quiet", [changing.url("/")], key, tmp_path / "store",
                    notify={"webhook": f"{base}/ok", "when": "changes"})
    run_json(run, job)
    run_json(run, job)
    assert received == []
    change_site(changing.site)
    run_json(run, job)
    assert len(received) == 1


def test_a_capture_the_store_refused_is_stored_by_the_next_run(run, key, pubkey, changing, tmp_path):
    store = tmp_path / "store"
    job = write_job(tmp_path, "outage", [changing.url("/")], key, store)
    break_store(store)                                          # put_capture fails
    result = run("jobs", "run", job, "--json")
    assert result.code == 1, result
    failed = json.loads(result.out)
    assert failed["status"] == "failed" and failed["error"]
    assert json.loads(run_records(store, "outage", "result")[0].read_text())["status"] == "failed"
    kept = list((tmp_path / "work" / "jobs" / "outage").glob("*/*.wacz"))
    assert len(kept) == 1                                       # sealed, kept, not lost

    mend_store(store)                                           # the store is back
    again = run("jobs", "run", job, "--json")
    assert again.code == 0, again                               # the lock was released
    outcome = json.loads(again.out)
    recovered = outcome["unfinished"]
    assert [r["capture_id"] for r in recovered] == [kept[0].parent.name]
    assert recovered[0]["stored"] and not kept[0].exists()
    verified = run("verify", recovered[0]["stored"], "--trust", pubkey)
    assert verified.code == 0, verified
    history = json.loads(run("custody", "show", recovered[0]["capture_id"], "--store", store, "--json").out)
    stored = [e for e in history["entries"] if e["event"] == "stored"]
    assert len(stored) == 1 and "earlier run" in stored[0]["details"]["note"]
    assert outcome["capture"]["capture_id"] != recovered[0]["capture_id"]


def test_a_sealed_leftover_that_does_not_verify_is_kept_not_stored(run, key, changing, tmp_path):
    store = tmp_path / "store"
    job = write_job(tmp_path, "tampered", [changing.url("/")], key, store)
    break_store(store)
    assert run("jobs", "run", job, "--quiet").code == 1
    mend_store(store)
    kept = next((tmp_path / "work" / "jobs" / "tampered").glob("*/*.wacz"))
    data = bytearray(kept.read_bytes())
    data[200] ^= 0x01                                           # one flipped bit
    kept.write_bytes(bytes(data))
    outcome = json.loads(run("jobs", "run", job, "--json").out)
    left = outcome["unfinished"][0]
    assert "does not verify" in left["not_stored"] and kept.exists()
    assert not list(store.glob(f"captures/*/*/*/{left['capture_id']}.wacz"))


def test_an_earlier_capture_in_place_of_a_sealed_leftover_is_not_stored_under_its_id(run, key, changing, tmp_path):
    """Signed by the job's key and intact, but another capture: stored under the
    leftover's id it would stand for a capture that was never stored."""
    store = tmp_path / "store"
    job = write_job(tmp_path, "swapped", [changing.url("/")], key, store)
    earlier = run_json(run, job)["capture"]["address"]
    break_store(store, tmp_path / "captures")
    assert run("jobs", "run", job, "--quiet").code == 1
    mend_store(store, tmp_path / "captures")
    kept = next((tmp_path / "work" / "jobs" / "swapped").glob("*/*.wacz"))
    kept.write_bytes(Path(earlier).read_bytes())
    left = json.loads(run("jobs", "run", job, "--json").out)["unfinished"][0]
    assert "does not verify" in left["not_stored"] and "says it is capture" in left["not_stored"]
    assert not list(store.glob(f"captures/*/*/*/{left['capture_id']}.wacz")) and kept.exists()


def test_a_job_asks_its_tsas_and_records_custody(run, key, pubkey, changing, tmp_path, tsa, tsa_ca):
    store = tmp_path / "store"
    job = write_job(tmp_path, "timed", [changing.url("/")], key, store,
                    timestamps={"tsa": [tsa.url], "timeout": "20s"})
    outcome = run_json(run, job)
    stamps = outcome["capture"]["timestamps"]
    assert [s["tsa"] for s in stamps] == [tsa.url] and stamps[0]["time"] and not stamps[0]["error"]
    assert outcome["problems"] == []
    verified = run("verify", outcome["capture"]["address"], "--trust", pubkey, "--trust-tsa", tsa_ca)
    assert verified.code == 0, verified
    history = run("custody", "show", outcome["capture"]["capture_id"], "--store", store, "--json")
    assert history.code == 0, history
    events = [e["event"] for e in json.loads(history.out)["entries"]]
    assert events[:3] == ["captured", "sealed", "timestamped"] and "stored" in events


def _refused_by_the_store(run, job, store: Path, tmp_path: Path) -> tuple[int, str, str]:
    """`jobs run JOB --json` into a store that cannot take a capture (break_store)."""
    break_store(store, tmp_path / "captures")
    result = run("jobs", "run", job, "--json")
    return result.code, result.out, result.err


def _stopped_by_sigterm(job, site: SiteServer, tmp_path: Path) -> tuple[int, str, str]:
    """`jobs run JOB --json` in a process of its own, sent SIGTERM once the site has its
    request for the home page, which it holds (as a slow site does)."""
    asked = site.site.requests.count("/")
    site.site.routes["/"].handler = slow(60)
    process = start_run(job, tmp_path)
    try:
        wait_for(lambda: site.site.requests.count("/") > asked, what="the run to ask for the home page")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("stop,code,status", [
    ("failed", 1, "failed"),
    ("sigterm", 143, "interrupted"),
])
def test_a_run_that_stops_after_an_earlier_capture_is_recorded_and_notified(
        run, key, changing, tmp_path, webhook, stop, code, status):
    """A run with a previous capture that takes none itself has nothing to compare: it is
    still recorded, reported and notified, never an internal error. Stopped for real: the
    store refuses the capture, or SIGTERM comes in the middle of the crawl."""
    base, received = webhook
    store = tmp_path / "store"
    job = write_job(tmp_path, "stops", [changing.url("/")], key, store,
                    notify={"webhook": f"{base}/ok", "when": "failures"})
    first = run_json(run, job)

    if stop == "failed":
        exit_code, out, err = _refused_by_the_store(run, job, store, tmp_path)
    else:
        exit_code, out, err = _stopped_by_sigterm(job, changing, tmp_path)
    assert exit_code == code, (exit_code, out, err)
    assert "internal error" not in out + err
    record = json.loads(run_records(store, "stops", "result")[-1].read_text())
    assert record["status"] == status and record["previous_capture"] == first["capture"]["capture_id"]
    assert "changes" not in record
    if stop == "failed":
        outcome = json.loads(out)
        kept = next((tmp_path / "work" / "jobs" / "stops").glob("*/*.wacz"))
        assert outcome["status"] == "failed" and outcome["error"] == record["error"]
        # what the store said, and where the sealed capture waits for the next run
        assert outcome["error"].startswith(f"capture {kept.parent.name} was not stored: ")
        assert "Not a directory" in outcome["error"] and f"kept at {kept}" in outcome["error"]
        assert outcome["changes"] is None
        assert [r[1]["status"] for r in received] == ["failed"]
    else:
        assert "stopped by SIGTERM" in err
        assert [(r[1]["status"], r[1]["error"]) for r in received] == [("interrupted", "stopped by SIGTERM")]


def test_notify_when_failures_includes_a_run_that_needs_a_person(run, key, changing, tmp_path, webhook):
    """Exit 1 with the capture stored (here: the previous capture is damaged in the store)
    is something to look at: a job that asks to hear of failures hears of it."""
    base, received = webhook
    job = write_job(tmp_path, "alerts", [changing.url("/")], key, tmp_path / "store",
                    notify={"webhook": f"{base}/ok", "when": "failures"})
    first = run_json(run, job)
    assert received == []
    stored = Path(first["capture"]["address"])
    stored.chmod(0o644)
    stored.write_bytes(b"damaged in the store")
    result = run("jobs", "run", job, "--json")
    assert result.code == 1, result
    assert len(received) == 1
    sent = received[0][1]
    assert sent["status"] == "ok" and [p for p in sent["problems"] if "cannot be read" in p]


def test_run_output_shows_what_could_not_be_compared_never_none(run, key, changing, tmp_path):
    """The home page down in the second run: no change can be claimed, and none is, but
    the text must not say 'none' either: it says what could not be compared."""
    job = write_job(tmp_path, "blind", [changing.url("/")], key, tmp_path / "store",
                    crawl={"depth": 2, "scope": "prefix", "retries": 0})
    run_json(run, job)
    changing.site.html("/", "Down", "<p>maintenance</p>", status=503)
    result = run("jobs", "run", job, "--quiet")
    # its only seed failed: stored as a record of that, but a failed run
    assert result.code == 1, result
    assert "FAILED: no page could be captured" in result.out and "stored   " in result.out
    # the capture said as `archive capture` says it: its signer, and every failed fetch counted
    assert re.search(r"^signer   [0-9a-f]{16}", result.out, re.M), result.out
    assert re.search(r"^pages    \d+, requisites \d+, failed fetches [1-9]", result.out, re.M), result.out
    assert "changes  none" not in result.out
    unknown = [line for line in result.out.splitlines() if line.startswith("unknown  ")]
    assert len(unknown) == 3 and any("could not be captured" in line and "HTTP 503" in line for line in unknown)
