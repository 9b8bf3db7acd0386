"""The download path for real: a threaded HTTP server on 127.0.0.1 with Range support."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from biojepa.data.download import download_file, extract_archive, sha256sum
from biojepa.errors import DownloadError

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; ``/truncated/NAME`` announces the full length but sends half."""

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Range")))
        truncated = self.path.startswith("/truncated/")
        name = self.path.removeprefix("/truncated/").lstrip("/")
        body = self.server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header and not self.server.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        self.wfile.write(chunk[: len(chunk) // 2] if truncated else chunk)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files = {"payload.bin": PAYLOAD}
    httpd.requests = []
    httpd.ignore_range = False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd, name: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/{name}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_success_verifies_checksum(server, tmp_path):
    url = _url(server, "payload.bin")
    dest = download_file(url, tmp_path / "p.bin", sha256=_sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "p.bin.part").exists()
    download_file(_url(server, "payload.bin"), dest, sha256=_sha(PAYLOAD), progress=False)
    assert len(server.requests) == 1  # verified file present: no second transfer


def test_download_resumes_partial_file_with_range(server, tmp_path):
    dest = tmp_path / "p.bin"
    (tmp_path / "p.bin.part").write_bytes(PAYLOAD[:30_000])
    download_file(_url(server, "payload.bin"), dest, sha256=_sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/payload.bin", "bytes=30000-")]


def test_download_restarts_when_server_ignores_range(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "p.bin"
    (tmp_path / "p.bin.part").write_bytes(b"garbage")
    download_file(_url(server, "payload.bin"), dest, sha256=_sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    dest = tmp_path / "p.bin"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_file(_url(server, "payload.bin"), dest, sha256="0" * 64, progress=False)
    assert not dest.exists()
    assert not (tmp_path / "p.bin.part").exists()


def test_truncated_download_is_refused_then_resumed(server, tmp_path):
    dest = tmp_path / "p.bin"
    with pytest.raises(DownloadError, match=r"truncated|interrupted"):
        download_file(_url(server, "truncated/payload.bin"), dest, progress=False)
    assert not dest.exists()
    part = tmp_path / "p.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    download_file(_url(server, "payload.bin"), dest, sha256=_sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1][1] == f"bytes={len(PAYLOAD) // 2}-"


def test_http_error_is_a_download_error(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download_file(_url(server, "missing.bin"), tmp_path / "m.bin", progress=False)


def _tar_bytes(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_downloaded_tar_extracts(server, tmp_path):
    data = _tar_bytes({"ds/perturb_processed.h5ad": b"h5", "ds/readme.txt": b"hi"})
    server.files["ds.tar.gz"] = data
    url = _url(server, "ds.tar.gz")
    archive = download_file(url, tmp_path / "ds.tar.gz", sha256=_sha(data), progress=False)
    written = extract_archive(archive, tmp_path / "out")
    assert sorted(p.name for p in written) == ["perturb_processed.h5ad", "readme.txt"]
    assert (tmp_path / "out" / "ds" / "readme.txt").read_bytes() == b"hi"
    assert not any(p.name.startswith(".extract-") for p in (tmp_path / "out").iterdir())


def test_zip_and_gzip_extract(tmp_path):
    (tmp_path / "a.zip").write_bytes(_zip_bytes({"norman/perturb_processed.h5ad": b"x"}))
    written = extract_archive(tmp_path / "a.zip", tmp_path / "z")
    assert written == [tmp_path / "z/norman/perturb_processed.h5ad"]
    (tmp_path / "t.tsv.gz").write_bytes(gzip.compress(b"a\tb\n"))
    assert extract_archive(tmp_path / "t.tsv.gz", tmp_path / "g") == [tmp_path / "g/t.tsv"]
    assert (tmp_path / "g/t.tsv").read_bytes() == b"a\tb\n"


@pytest.mark.parametrize(
    "data",
    [
        _tar_bytes({"ok.txt": b"1", "../evil.txt": b"x"}),
        _tar_bytes({"/tmp/abs-evil.txt": b"x"}),
        _tar_bytes({"ok.txt": b"1"}, links={"link": "../../outside"}),
        _zip_bytes({"ok.txt": b"1", "../evil.txt": b"x"}),
    ],
    ids=["tar-dotdot", "tar-absolute", "tar-link-escape", "zip-dotdot"],
)
def test_unsafe_archive_is_refused_before_writing(tmp_path, data):
    archive = tmp_path / "bad.archive"
    archive.write_bytes(data)
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match="unsafe member"):
        extract_archive(archive, out)
    assert list(out.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_corrupt_archive_is_refused(tmp_path):
    good = _zip_bytes({"a.txt": b"payload" * 100})
    corrupt = good.replace(b"payload", b"PAYLOAD", 1)
    (tmp_path / "c.zip").write_bytes(corrupt)
    with pytest.raises(DownloadError, match="corrupt"):
        extract_archive(tmp_path / "c.zip", tmp_path / "out")
    truncated_tar = _tar_bytes({"a.txt": bytes(5000)})[:60]
    (tmp_path / "t.tar.gz").write_bytes(truncated_tar)
    with pytest.raises(DownloadError, match=r"corrupt|not a tar"):
        extract_archive(tmp_path / "t.tar.gz", tmp_path / "out2")
    assert list((tmp_path / "out2").iterdir()) == []


def test_sha256sum_matches_hashlib(tmp_path):
    path = Path(tmp_path / "f")
    path.write_bytes(PAYLOAD)
    assert sha256sum(path) == _sha(PAYLOAD)


def test_complete_partial_file_answered_416_restarts_cleanly(server, tmp_path):
    dest = tmp_path / "p.bin"
    (tmp_path / "p.bin.part").write_bytes(PAYLOAD + b"extra")
    download_file(_url(server, "payload.bin"), dest, sha256=_sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [r[1] for r in server.requests] == [f"bytes={len(PAYLOAD) + 5}-", None]
