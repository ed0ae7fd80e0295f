"""Telling someone how a run went: a webhook (JSON POST) and/or a command (JSON on stdin).

A notification that fails never fails the run: what happened is returned, recorded
in the job's state and shown by the CLI.
"""

from __future__ import annotations

import json
import subprocess

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from archive import SOFTWARE
from archive.jobs.spec import NotifySpec

STDERR_TAIL = 500


def wanted(spec: NotifySpec, outcome: dict) -> bool:
    """Whether this run's outcome is one the job asked to hear about."""
    if not (spec.webhook or spec.command):
        return False
    # A run that stored its capture but needs a person (`jobs run` exit 1: an earlier
    # capture unreadable or left unstored, custody not recorded) is a failure to hear of.
    failed = outcome.get("status") != "ok" or bool(outcome.get("problems"))
    if spec.when == "failures":
        return failed
    if spec.when == "changes":
        counts = (outcome.get("changes") or {}).get("counts", {})
        return failed or any(counts.get(kind) for kind in ("added", "removed", "changed", "redirected"))
    return True


def post_webhook(url: str, payload: bytes, timeout: float) -> dict:
    session = requests.Session()
    # Bounded retries with backoff on connection errors and 5xx, POST included.
    retry = Retry(total=3, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504),
                  allowed_methods=None, raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    try:
        response = session.post(url, data=payload, timeout=timeout, headers={
            "Content-Type": "application/json", "User-Agent": SOFTWARE,
        })
    except requests.RequestException as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        session.close()
    ok = 200 <= response.status_code < 300
    return {"ok": ok, "status": response.status_code,
            **({} if ok else {"error": f"the webhook answered HTTP {response.status_code}"})}


def run_command(argv: list[str], payload: bytes, timeout: float) -> dict:
    try:
        done = subprocess.run(argv, input=payload, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return {"ok": False, "error": f"command not found: {argv[0]}"}
    except PermissionError:
        return {"ok": False, "error": f"command not executable: {argv[0]}"}
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"command did not finish within {timeout:g}s"}
    result = {"ok": done.returncode == 0, "exit": done.returncode}
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip()[-STDERR_TAIL:]
        result["error"] = f"command exited {done.returncode}" + (f": {tail}" if tail else "")
    return result


def notify(spec: NotifySpec, outcome: dict) -> dict:
    """Send the outcome where the job says; {"webhook": {...}, "command": {...}}."""
    payload = json.dumps(outcome, indent=2, ensure_ascii=False).encode("utf-8")
    sent = {}
    if spec.webhook:
        sent["webhook"] = post_webhook(spec.webhook, payload, spec.timeout)
    if spec.command:
        sent["command"] = run_command(spec.command, payload, spec.timeout)
    return sent
