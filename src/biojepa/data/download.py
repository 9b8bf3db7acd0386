"""Verified, resumable downloads and safe archive extraction.

:func:`download_file` streams into ``dest + ".part"``, resumes an interrupted transfer with an HTTP
``Range`` request, checks the length against ``Content-Length`` and the sha256 when one is given,
and only then renames the file to ``dest``: a corrupt or truncated file never appears at ``dest``.
:func:`extract_archive` unpacks tar / zip / gzip files after checking every member stays inside the
destination directory.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from biojepa.errors import DownloadError

CHUNK = 1 << 20
TIMEOUT_S = 60
USER_AGENT = "biojepa-downloader"


def sha256sum(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, dest: Path, *, sha256: str | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    An existing ``dest`` whose checksum matches (or any existing ``dest`` when ``sha256`` is None) is
    kept without a download. A partial ``dest.part`` from an earlier attempt is resumed. Raises
    :class:`DownloadError` on network errors, a truncated transfer (the partial file is kept so the
    next call resumes) or a checksum mismatch (the bad file is deleted).
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256sum(dest) == sha256.lower()):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch(url, part, progress=progress)
    if sha256 is not None:
        actual = sha256sum(part)
        if actual != sha256.lower():
            part.unlink()
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {actual}; the "
                "corrupt file was deleted - retry the download, and if it fails again the source changed"
            )
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, *, progress: bool) -> None:
    """Stream ``url`` into ``part``, appending when the server honours a Range request."""
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            part.unlink()
            _fetch(url, part, progress=progress)
            return
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"cannot reach {url} ({exc}); check the network connection or proxy") from exc
    with response:
        resumed = offset > 0 and response.status == 206
        if not resumed:
            offset = 0
        length = response.headers.get("Content-Length")
        expected = offset + int(length) if length is not None else None
        received = offset
        with open(part, "ab" if resumed else "wb") as handle, _progress_bar(progress) as bar:
            task = bar.add_task(Path(part.name).stem, total=expected, completed=offset)
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    received += len(block)
                    bar.update(task, completed=received)
            except (OSError, http.client.IncompleteRead) as exc:
                raise DownloadError(
                    f"download of {url} was interrupted after {received} bytes ({exc}); run the same "
                    f"command again to resume from {part}"
                ) from exc
    if expected is not None and received != expected:
        raise DownloadError(
            f"download of {url} is truncated: received {received} of {expected} bytes; run the same "
            f"command again to resume from {part}"
        )


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        disable=not enabled,
        transient=False,
    )


def extract_archive(path: Path, dest_dir: Path) -> list[Path]:
    """Unpack a tar (any compression), zip or gzip file into ``dest_dir``; return the files written.

    Every member is checked before anything is written: absolute paths, ``..`` components, links
    pointing outside ``dest_dir`` and device files raise :class:`DownloadError`, as does a corrupt
    archive. Files are unpacked into a temporary directory inside ``dest_dir`` and moved into place
    only when the whole archive was read successfully.
    """
    path, dest_dir = Path(path), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_dir))
    try:
        try:
            if tarfile.is_tarfile(path):
                _extract_tar(path, staging)
            elif zipfile.is_zipfile(path):
                _extract_zip(path, staging)
            elif _is_gzip(path):
                _extract_gzip(path, staging)
            else:
                raise DownloadError(
                    f"{path} is not a tar, zip or gzip archive (or it is corrupt); "
                    "delete it and download again"
                )
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DownloadError(f"archive {path} is corrupt ({exc}); delete it and download again") from exc
        return _move_into_place(staging, dest_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_tar(path: Path, staging: Path) -> None:
    with tarfile.open(path) as archive:
        members = archive.getmembers()
        for member in members:
            try:
                if _escapes(member.name):
                    raise tarfile.FilterError("absolute path or '..' component")
                tarfile.data_filter(member, str(staging))
            except tarfile.FilterError as exc:
                raise DownloadError(
                    f"archive {path} has an unsafe member {member.name!r} ({exc}); refusing to extract it"
                ) from exc
        archive.extractall(staging, members=members, filter="data")


def _extract_zip(path: Path, staging: Path) -> None:
    root = staging.resolve()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            target = (root / name).resolve()
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if _escapes(name) or is_link or not target.is_relative_to(root):
                raise DownloadError(f"archive {path} has an unsafe member {name!r}; refusing to extract it")
        bad = archive.testzip()
        if bad is not None:
            raise DownloadError(
                f"archive {path} is corrupt (CRC error in {bad!r}); delete it and download again"
            )
        archive.extractall(staging)


def _escapes(name: str) -> bool:
    """Whether an archive member name is absolute or climbs out with ``..``."""
    return name.startswith(("/", "\\")) or Path(name).is_absolute() or ".." in Path(name).parts


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _extract_gzip(path: Path, staging: Path) -> None:
    name = path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name + ".out"
    with gzip.open(path, "rb") as source, open(staging / name, "wb") as target:
        shutil.copyfileobj(source, target)


def _move_into_place(staging: Path, dest_dir: Path) -> list[Path]:
    written = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file() or p.is_symlink())
    for top in staging.iterdir():
        target = dest_dir / top.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(top, target)
    return [dest_dir / rel for rel in written]
