"""A script's upload (tuspy, token auth) against the portal under daphne, through a loopback proxy that
cuts the connection in the middle of one PATCH: the upload resumes from where the server stands and
ends as a version of the project's own catalog, holding exactly the file's bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import socket
import threading
from pathlib import Path

import pytest
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from portal.tokens import token_issue
from tests.live_server import port_of
from tests.transfers.upload_helpers import qcow2_image, use_private_folders
from transfers.models import Upload

PART = 64 * 1024


class CuttingProxy:
    """Forwards 127.0.0.1 connections to ``upstream_port``; the ``nth`` PATCH is cut after ``after`` bytes."""

    def __init__(self, upstream_port: int, *, nth: int, after: int) -> None:
        self.upstream_port = upstream_port
        self.nth = nth
        self.after = after
        self.patches_seen = 0
        self.cut = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> CuttingProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._spawn(self._client_to_server, downstream, upstream)
            self._spawn(self._pump, upstream, downstream)

    def _client_to_server(self, downstream: socket.socket, upstream: socket.socket) -> None:
        first = downstream.recv(65536)
        to_cut = False
        if first.startswith(b"PATCH "):
            with self._lock:
                self.patches_seen += 1
                to_cut = self.patches_seen == self.nth
        sent = 0
        data = first
        while data:
            if to_cut and sent + len(data) > self.after:
                upstream.sendall(data[: self.after - sent])
                self.cut.set()
                for end in (downstream, upstream):
                    end.shutdown(socket.SHUT_RDWR)
                    end.close()
                return
            upstream.sendall(data)
            sent += len(data)
            data = _recv(downstream)
        _close(upstream, downstream)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while data := _recv(source):
            try:
                target.sendall(data)
            except OSError:
                break
        _close(source, target)


def _recv(end: socket.socket) -> bytes:
    try:
        return end.recv(65536)
    except OSError:
        return b""


def _close(*ends: socket.socket) -> None:
    for end in ends:
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()


@pytest.fixture
def folders(settings, tmp_path):
    """Set before the live server starts: its process takes the settings it was forked with."""
    return use_private_folders(settings, tmp_path)


def test_an_upload_cut_mid_request_resumes_and_becomes_a_version(folders, live_portal, member, project, tmp_path):
    data = qcow2_image(tmp_path / "web.qcow2", size="256M")
    assert len(data) > 3 * PART  # several parts, so one can be cut in the middle
    _, secret = token_issue(user=member, name="script")
    with CuttingProxy(port_of(live_portal), nth=2, after=PART // 2) as proxy:
        tus = tus_client.TusClient(f"{proxy.url}/api/v1/uploads/", headers={"Authorization": f"Token {secret}"})
        metadata = {"project": str(project.pk), "appliance": "script-web", "version": "2.0", "filename": "web.qcow2"}
        first_try = tus.uploader(file_stream=io.BytesIO(data), chunk_size=PART, metadata=metadata)
        with pytest.raises((TusUploadFailed, TusCommunicationError)):
            first_try.upload()
        assert proxy.cut.is_set()
        upload = Upload.objects.get()
        assert upload.status == Upload.Status.RECEIVING
        # Where the server stands: the first part, and of the cut one at most what reached it.
        resumed = tus.uploader(file_stream=io.BytesIO(data), url=first_try.url, chunk_size=PART)
        assert PART <= resumed.offset < 2 * PART
        resumed.upload()

    upload.refresh_from_db()
    # The live server's tasks run inline (tests' PORTAL_TASKS_SYNC): the last PATCH ran the check.
    assert (upload.status, upload.error) == (Upload.Status.READY, "")
    assert upload.result.image.sha256 == hashlib.sha256(data).hexdigest()
    assert (upload.result.appliance.identifier, upload.result.version) == ("script-web", "2.0")
    assert list(Path(folders / "uploads").iterdir()) == []
