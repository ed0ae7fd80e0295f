"""The one place where a job file becomes a pipeline CaptureRequest (the store's
options, endpoint and retention, are made by preflight.store_options)."""

from __future__ import annotations

from pathlib import Path

from archive.capture.crawl import CrawlOptions
from archive.capture.fetch import DEFAULT_USER_AGENT
from archive.capture.login import Credentials
from archive.capture.mediaoptions import MediaOptions
from archive.capture.pageoptions import PageOptions
from archive.jobs.spec import JobSpec
from archive.pipeline import DEFAULT_WORK_DIR, CaptureRequest
from archive.profiles.vault import open_for_capture
from archive.redisconn import redis_url
from archive.seal.timestamp import DEFAULT_TIMEOUT as TSA_TIMEOUT
from archive.warc.records import default_operator
from archive.warc.writer import DEFAULT_MAX_SIZE

def job_work_dir(spec: JobSpec) -> Path:
    """Where this job's captures are assembled: a folder of its own, so that what an
    interrupted run left behind is found by the next run of the same job."""
    return (spec.work_dir or Path(DEFAULT_WORK_DIR)) / "jobs" / spec.name


def page_options(spec: JobSpec) -> PageOptions | None:
    """How the browser loads pages, or None for a job without `browser = true`."""
    crawl = spec.crawl
    if not crawl.browser:
        return None
    return PageOptions(viewport_width=crawl.viewport[0], viewport_height=crawl.viewport[1],
                       wait=crawl.wait_until, selector=crawl.wait_for, delay=crawl.wait,
                       scroll=crawl.scroll, timeout=crawl.page_timeout)


def media_options(spec: JobSpec) -> MediaOptions | None:
    """How media are captured, or None for a job without `media = true`."""
    crawl = spec.crawl
    if not crawl.media:
        return None
    return MediaOptions(max_size=crawl.media_max_size, format=crawl.media_format,
                        live=crawl.media_live,
                        cookies=str(crawl.media_cookies) if crawl.media_cookies else None)


def capture_request(spec: JobSpec, previous: str | None = None,
                    credentials: Credentials | None = None) -> CaptureRequest:
    """The pipeline request for one run of `spec` (logged in with `credentials`, the
    job's profile opened by job_login).

    `previous`: the job's last stored capture id; with `dedup` (the default) payloads
    unchanged since it are stored as revisit records pointing into it.
    """
    crawl = spec.crawl
    options = CrawlOptions(
        seeds=list(spec.seeds), depth=crawl.depth, scope=crawl.scope,
        include=list(crawl.include), exclude=list(crawl.exclude), max_pages=crawl.max_pages,
        max_bytes=crawl.max_bytes, max_time=crawl.max_time, max_body=crawl.max_body,
        timeout=crawl.timeout, user_agent=crawl.user_agent or DEFAULT_USER_AGENT,
        verify_tls=not crawl.insecure, workers=crawl.workers, host_workers=crawl.host_workers,
        delay=crawl.delay, retries=crawl.retries, backoff=crawl.retry_wait,
        max_redirects=crawl.max_redirects, obey_robots=not crawl.ignore_robots,
        dedup=crawl.dedup, browser=page_options(spec), media=media_options(spec),
        allow_private_addresses=crawl.allow_private_addresses,
        allow_metadata_addresses=crawl.allow_metadata_addresses,
        cookies=str(crawl.cookies) if crawl.cookies else None, headers=list(crawl.headers),
        secret_headers=list(crawl.secret_headers), url_logins=dict(spec.url_logins),
        logged_out_url=list(crawl.logged_out_url), logged_out_selector=list(crawl.logged_out_selector),
    )
    return CaptureRequest(
        crawl=options, operator=spec.operator or default_operator(),
        work_dir=job_work_dir(spec), warc_size=crawl.warc_size or DEFAULT_MAX_SIZE,
        keep_local=spec.keep_local, job=spec.name, title=spec.title,
        dedup_against=previous if crawl.dedup else None,
        tsa=list(spec.tsa), tsa_timeout=spec.tsa_timeout or TSA_TIMEOUT, text=crawl.text,
        redis=redis_url(spec.run.redis), processes=spec.run.processes, lease=max(1.0, spec.run.lease),
        profile=str(crawl.profile) if crawl.profile else None,
        profile_identity=credentials.identity if credentials else None,
    )


def job_login(spec: JobSpec) -> Credentials | None:
    """The browser profile the job logs in with (None without one), its passphrase from
    the variable or file the job names: opened before anything is fetched."""
    crawl = spec.crawl
    if crawl.profile is None:
        return None
    return open_for_capture(crawl.profile, crawl.profile_passphrase_file, crawl.profile_passphrase_env)
