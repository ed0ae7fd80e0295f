"""A real S3 endpoint for tests: moto's server mode on a free 127.0.0.1 port, reached only
over HTTP through boto3, and a proxy that can sit between the two and alter traffic.

Fixtures (registered by conftest.py): `moto_endpoint` (one server per test process),
`aws_env` (credentials and endpoint in the environment, nothing from ~/.aws or the
instance metadata service), `s3` (a fresh bucket with versioning and Object Lock; moto's
state is reset afterwards, since it keeps every object in memory) and `s3_proxy`.
"""

from __future__ import annotations

import http.client
import http.server
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from tests.site import serving_thread


@pytest.fixture(scope="session")
def moto_endpoint():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch, moto_endpoint):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")    # never ask 169.254.169.254
    monkeypatch.delenv("ARCHIVE_S3_PART_SIZE", raising=False)
    return moto_endpoint


@dataclass
class S3Env:
    endpoint: str
    client: object            # a plain boto3 client straight to moto (the test's own view)
    bucket: str

    def address(self, prefix: str = "") -> str:
        return f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"

    def make_bucket(self, lock: bool = True, versioning: bool = True) -> str:
        name = f"t-{uuid.uuid4().hex[:16]}"
        if lock:
            self.client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        else:
            self.client.create_bucket(Bucket=name)
            if versioning:
                self.client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def keys(self, bucket: str | None = None) -> list[str]:
        response = self.client.list_objects_v2(Bucket=bucket or self.bucket)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def versions(self, key: str, bucket: str | None = None) -> list[dict]:
        response = self.client.list_object_versions(Bucket=bucket or self.bucket, Prefix=key)
        return [v for v in response.get("Versions", []) if v["Key"] == key]

    def uploads(self, bucket: str | None = None) -> list[dict]:
        return self.client.list_multipart_uploads(Bucket=bucket or self.bucket).get("Uploads", [])

    def read(self, key: str, bucket: str | None = None) -> bytes:
        return self.client.get_object(Bucket=bucket or self.bucket, Key=key)["Body"].read()


@pytest.fixture
def s3(aws_env, moto_endpoint):
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    env = S3Env(moto_endpoint, client, "")
    env.bucket = env.make_bucket(lock=True)
    yield env
    # moto keeps objects in memory; tests in one process run one after another
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=30)


# -- a proxy that can alter traffic ---------------------------------------------------
@dataclass
class Exchange:
    method: str
    path: str                  # path and query, as sent
    headers: dict
    body: bytes
    query: dict = field(default_factory=dict)

    @property
    def is_part(self) -> bool:
        return self.method == "PUT" and "partNumber" in self.query

    @property
    def part_number(self) -> int:
        return int(self.query["partNumber"][0]) if self.is_part else 0

    @property
    def is_object_put(self) -> bool:
        """A PutObject or UploadPart carrying object bytes."""
        return self.method == "PUT" and urlsplit(self.path).path.count("/") >= 2 and not any(
            q in self.query for q in ("retention", "legal-hold", "tagging", "acl"))


Answer = tuple[int, bytes]     # (status, XML body) sent instead of forwarding


class S3Proxy:
    """Forwards every request to `upstream`; `on_request(exchange)` may alter
    `exchange.body` or return an Answer instead; `after(exchange, status)` runs before the
    upstream's answer is passed back, and may return an Answer to send in its place;
    `response_headers(exchange, headers)` may rewrite the headers passed back."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.on_request: Callable[[Exchange], Answer | None] | None = None
        self.after: Callable[[Exchange, int], None] | None = None
        # may rewrite the upstream's response headers: (exchange, [(name, value)]) -> list
        self.response_headers: Callable[[Exchange, list], list] | None = None
        self.seen: list[tuple[str, str, int]] = []      # (method, path, bytes of response body)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("expect", "connection", "content-length")}
                exchange = Exchange(self.command, self.path, headers, body,
                                    parse_qs(urlsplit(self.path).query, keep_blank_values=True))
                answer = proxy.on_request(exchange) if proxy.on_request else None
                if answer is not None:
                    self._answer(*answer)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=exchange.body or None,
                                 headers={**headers, "Content-Length": str(len(exchange.body))})
                    response = conn.getresponse()
                    data = response.read()
                    answer = proxy.after(exchange, response.status) if proxy.after else None
                    if answer is not None:       # the upstream did it; the client hears this
                        self._answer(*answer)
                        return
                    self.send_response(response.status)
                    sent_headers = response.getheaders()
                    if proxy.response_headers:
                        sent_headers = proxy.response_headers(exchange, sent_headers)
                    for name, value in sent_headers:
                        if name.lower() not in ("connection", "transfer-encoding", "content-length",
                                                "server", "date"):
                            self.send_header(name, value)
                    length_header = response.getheader("Content-Length")
                    if self.command == "HEAD":
                        self.send_header("Content-Length", length_header or "0")
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    # noted before the body goes out: the client may act on it at once
                    proxy.seen.append((self.command, self.path, len(data)))
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                proxy.seen.append((self.command, self.path, len(data)))
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = serving_thread(self.server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "S3Proxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def s3_error(code: str, status: int) -> Answer:
    return status, (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>injected by the test proxy</Message></Error>").encode()


@pytest.fixture
def s3_proxy(s3, monkeypatch):
    """A proxy in front of moto; AWS_ENDPOINT_URL points at it."""
    with S3Proxy(s3.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy
