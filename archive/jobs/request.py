"""The one place where a job file becomes a pipeline CaptureRequest (the store's
options, endpoint and retention, are made by preflight.store_options; the crawl's, by
archive.capture.options as for `archive capture`)."""

from __future__ import annotations

from pathlib import Path

from archive.capture.login import Credentials
from archive.capture.options import crawl_options, request_values
from archive.jobs.spec import JobSpec
from archive.pipeline import DEFAULT_WORK_DIR, CaptureRequest
from archive.profiles.vault import open_for_capture
from archive.seal.timestamp import DEFAULT_TIMEOUT as TSA_TIMEOUT
from archive.warc.records import default_operator


def job_work_dir(spec: JobSpec) -> Path:
    """Where this job's captures are assembled: a folder of its own, so that what an
    interrupted run left behind is found by the next run of the same job."""
    return (spec.work_dir or Path(DEFAULT_WORK_DIR)) / "jobs" / spec.name


def capture_request(spec: JobSpec, previous: str | None = None,
                    credentials: Credentials | None = None) -> CaptureRequest:
    """The pipeline request for one run of `spec` (logged in with `credentials`, the
    job's profile opened by job_login).

    `previous`: the job's last stored capture id; with `dedup` (the default) payloads
    unchanged since it are stored as revisit records pointing into it.
    """
    return CaptureRequest(
        crawl=crawl_options(spec.seeds, spec.crawl, spec.url_logins), operator=spec.operator or default_operator(),
        work_dir=job_work_dir(spec), keep_local=spec.keep_local, job=spec.name, title=spec.title,
        tsa=list(spec.tsa), tsa_timeout=spec.tsa_timeout or TSA_TIMEOUT,
        profile_identity=credentials.identity if credentials else None,
        **{**request_values(spec.crawl), "dedup_against": previous if spec.crawl.dedup else None},
    )


def job_login(spec: JobSpec) -> Credentials | None:
    """The browser profile the job logs in with (None without one), its passphrase from
    the variable or file the job names: opened before anything is fetched."""
    crawl = spec.crawl
    if crawl.profile is None:
        return None
    return open_for_capture(crawl.profile, crawl.profile_passphrase_file, crawl.profile_passphrase_env)
