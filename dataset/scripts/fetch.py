"""HTTP downloads that survive interruptions, checksum checks, safe zip extraction, link scraping.

Standard library only (urllib, zipfile, html.parser) plus the project's progress bar. A download
goes to `NAME.part` first and is renamed when complete and verified, so a file without `.part` is
always whole; an interrupted download resumes from the `.part` with an HTTP Range request.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

from tqdm import tqdm

from amadeus.errors import AmadeusError
from amadeus.progress import is_interactive, progress

CHUNK = 1 << 20  # bytes read per step: small enough for a smooth bar, large enough to be fast
TIMEOUT = 30  # seconds without an answer before a request fails
USER_AGENT = "amadeus-dataset-scripts (python urllib)"


class DownloadError(AmadeusError):
    """A download, checksum or archive that cannot be used."""


class Unreachable(DownloadError):
    """The host does not answer at all (offline, DNS, refused): no point trying other files."""


class HTTPStatusError(DownloadError):
    """The server answered with an error status (404, 416, ...)."""

    def __init__(self, url: str, code: int, reason: str) -> None:
        super().__init__(f"{url}: HTTP {code} {reason}")
        self.code = code


def download(
    url: str, dest: Path, *, checksums: dict[str, str] | None = None, quiet: bool = False
) -> Path:
    """Fetches `url` into `dest`, resuming `dest.part` if an earlier run was interrupted.

    `checksums` maps a hashlib name ("sha256", "md5") to the published hex digest; every one given
    must match, or the partial file is deleted (a corrupt prefix must not be resumed forever).
    An existing `dest` is trusted: it was only renamed there after verification.
    """
    if dest.exists():
        return dest
    part = dest.with_name(dest.name + ".part")
    _fetch_into(url, part, quiet)
    _verify(url, part, checksums or {})
    os.replace(part, dest)
    return dest


def _fetch_into(url: str, part: Path, quiet: bool) -> None:
    """Appends the missing bytes of `url` to `part` (all of them when it does not exist yet)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = _open(url, headers)
    except HTTPStatusError as e:
        if offset and e.code == 416:  # the range starts at the end: the part is already whole
            return
        raise
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the Range header and sends everything again
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else None
        part.parent.mkdir(parents=True, exist_ok=True)  # only now: nothing is left when offline
        with (
            part.open("ab" if offset else "wb") as f,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=part.name.removesuffix(".part"),
                disable=quiet or not is_interactive(),
                leave=False,
            ) as bar,
        ):
            for chunk in _chunks(url, response, offset, total):
                f.write(chunk)
                bar.update(len(chunk))


def _chunks(url: str, response, received: int, total: int | None) -> Iterator[bytes]:
    """The rest of the body; a connection that ends early raises, keeping what came in the .part."""
    try:
        while chunk := response.read(CHUNK):
            received += len(chunk)
            yield chunk
    except (OSError, http.client.HTTPException) as e:  # reset, timeout, broken chunked encoding
        raise DownloadError(
            f"{url}: connection lost after {received} bytes ({e}); run again to resume"
        ) from e
    if total is not None and received < total:  # urllib returns a short body without complaint
        raise DownloadError(
            f"{url}: connection lost after {received} of {total} bytes; run again to resume"
        )


def _open(url: str, headers: dict[str, str]):
    """urlopen whose errors are one line: Unreachable (no answer) or HTTPStatusError."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        raise HTTPStatusError(url, e.code, e.reason) from e
    except urllib.error.URLError as e:
        reason = getattr(e.reason, "strerror", None) or e.reason
        raise Unreachable(f"cannot reach {urlsplit(url).netloc}: {reason}") from e
    except OSError as e:  # a timeout before the first byte
        raise Unreachable(f"cannot reach {urlsplit(url).netloc}: {e}") from e


def _verify(url: str, path: Path, checksums: dict[str, str]) -> None:
    for algorithm, expected in checksums.items():
        actual = file_digest(path, algorithm)
        if actual != expected.lower():
            path.unlink()
            raise DownloadError(
                f"{url}: {algorithm} mismatch: expected {expected}, got {actual}; "
                f"deleted {path}, run again to download it afresh"
            )


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_text(url: str) -> str:
    """A small page (HTML) as text; the charset the server names, else UTF-8 leniently."""
    with _open(url, {}) as response:
        charset = response.headers.get_content_charset() or "utf-8"
        return response.read().decode(charset, errors="replace")


def extract_zip(archive: Path, out_dir: Path, *, strip: str = "", quiet: bool = False) -> int:
    """Extracts every file of `archive` under `out_dir`; returns how many were written.

    Member names starting with `strip` lose that prefix (MAESTRO's top folder). Every name is
    checked before anything is written, so an archive with one unsafe path writes nothing. Files
    already there with the member's size are left alone: a re-run after a complete extraction
    writes nothing; one after an interrupted extraction finishes it.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            targets = [_safe_target(archive, out_dir, m.filename, strip) for m in members]
            written = 0
            pairs = progress(zip(members, targets), total=len(members), desc="extract", quiet=quiet)
            for member, target in pairs:
                if target.is_file() and target.stat().st_size == member.file_size:
                    continue
                with zf.open(member) as src:
                    _write_atomic(target, src)
                written += 1
            return written
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{archive}: not a usable zip archive ({e})") from e


def _safe_target(archive: Path, out_dir: Path, name: str, strip: str) -> Path:
    """out_dir / name, refusing names that would land outside out_dir ("zip slip")."""
    relative = PurePosixPath(name.removeprefix(strip))
    parts = relative.parts
    if (
        not parts
        or relative.is_absolute()
        or ".." in parts
        or "\\" in name
        or ":" in parts[0]  # a Windows drive ("C:")
    ):
        raise DownloadError(f"{archive}: refusing unsafe path {name!r} in the archive")
    return out_dir.joinpath(*parts)


def _write_atomic(target: Path, src) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # one writer per file and process
    try:
        with tmp.open("wb") as f:
            shutil.copyfileobj(src, f, CHUNK)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class _Links(HTMLParser):
    """Collects the href of every <a> tag."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value for key, value in attrs if key == "href" and value)


def links(page_url: str, html: str, suffixes: tuple[str, ...]) -> list[str]:
    """Absolute URLs of the page's links whose path ends in one of `suffixes` (any case), in page
    order, without repeats."""
    parser = _Links()
    parser.feed(html)
    found = (urljoin(page_url, href.strip()) for href in parser.hrefs)
    wanted = (url for url in found if urlsplit(url).path.lower().endswith(suffixes))
    return list(dict.fromkeys(wanted))


def url_filename(url: str) -> str:
    """The last path segment, unquoted first so that "..%2Fx.mid" cannot climb folders."""
    return PurePosixPath(unquote(urlsplit(url).path)).name
