"""A real S3 API on 127.0.0.1 for the object-store tests: moto's server in a subprocess.

moto checks a PUT's ``If-None-Match`` and then stores the object, without a lock between
the two (moto/s3/responses.py, ``put_object``, moto 5.2), and its server handles each
request in a thread of its own; AWS S3 and SeaweedFS make the check and the write one
step. So the server here runs moto's own WSGI app behind one lock (a request at a time):
the concurrency tests then test our protocol, not a race inside moto.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import IO

import pytest

from tests.prerequisites import missing

# Runs in the server's process: moto's app (as `moto_server` builds it), one request at a
# time. argv: host, port.
SERVER = """
import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()
def serial(environ, start_response):
    with one_at_a_time:
        return list(app(environ, start_response))
run_simple(sys.argv[1], int(sys.argv[2]), serial, threaded=True,
           request_handler=MotoRequestHandler)
"""

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def moto_available() -> bool:
    try:
        import moto.moto_server.werkzeug_app  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on 127.0.0.1, for the whole session."""
    if not moto_available():
        missing(
            "moto[server] and s3fs are not installed (dev extra)",
            "moto[server] and s3fs are missing; the dev extra installs them",
        )
    port = free_port()
    # The server logs a line per request: to a file, never to a pipe nobody drains.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, "127.0.0.1", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            _wait_until_listening(proc, port, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_listening(proc: subprocess.Popen, port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-2000:]
            pytest.fail(f"moto server exited with {proc.returncode}: {output}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail("moto server did not accept connections within 60 s")


def use_endpoint(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str) -> str:
    """Point s3fs at ``endpoint`` through the standard AWS variables (as a pod or the
    port-forwarded client would be), create ``bucket``; returns ``s3://<bucket>``."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    return f"s3://{bucket}"
