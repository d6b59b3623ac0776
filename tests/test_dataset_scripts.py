"""dataset/scripts: downloads against a local HTTP server (Range, checksums, offline, zip slip),
the Piano-e-Competition scraper, and the music21 export (skipped when music21 is absent)."""

import hashlib
import io
import re
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "dataset" / "scripts"
sys.path.insert(0, str(SCRIPTS))

import download  # noqa: E402
import fetch  # noqa: E402

from amadeus import cli  # noqa: E402

MIDI = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00"


class Handler(BaseHTTPRequestHandler):
    """Serves server.files; answers `Range: bytes=N-` with 206 unless server.ranges is False;
    drops the connection after server.cut bytes of a body when that is set."""

    def do_GET(self):
        self.server.log.append((self.path, self.headers.get("Range")))
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if wanted and self.server.ranges:
            start = int(wanted[1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:][: self.server.cut])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.log, httpd.ranges, httpd.cut = {}, [], True, None
    httpd.url = lambda path: f"http://127.0.0.1:{httpd.server_port}{path}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MAESTRO_LIKE = {
    "maestro-v3.0.0/2004/a.midi": MIDI,
    "maestro-v3.0.0/2006/b.midi": MIDI + b"\x00",
    "maestro-v3.0.0/maestro-v3.0.0.csv": b"canonical_composer,midi_filename\n",
}


def test_archive_downloaded_verified_and_extracted_once(server, tmp_path, monkeypatch):
    body = make_zip(MAESTRO_LIKE)
    server.files["/maestro.zip"] = body
    checksums = {
        "sha256": hashlib.sha256(body).hexdigest(),
        "md5": hashlib.md5(body).hexdigest(),
    }
    source = download.Archive(server.url("/maestro.zip"), checksums, "maestro-v3.0.0/", "note")
    monkeypatch.setitem(download.DATASETS, "maestro", source)
    out = tmp_path / "maestro"

    assert download.main(["maestro", str(out), "--quiet"]) == 0

    assert (out / "maestro.zip").read_bytes() == body
    assert (out / "2004" / "a.midi").read_bytes() == MIDI
    assert (out / "2006" / "b.midi").read_bytes() == MIDI + b"\x00"
    assert (out / "maestro-v3.0.0.csv").is_file()
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "a.midi",
        "b.midi",
        "maestro-v3.0.0.csv",
        "maestro.zip",
    ]
    assert server.log == [("/maestro.zip", None)]
    # A second run finds the verified zip and the extracted files: no request, nothing rewritten.
    assert fetch.extract_zip(out / "maestro.zip", out, strip="maestro-v3.0.0/", quiet=True) == 0
    assert download.main(["maestro", str(out), "--quiet"]) == 0
    assert server.log == [("/maestro.zip", None)]


def test_download_resumes_a_partial_file_with_a_range_request(server, tmp_path):
    body = bytes(range(256)) * 40
    server.files["/x.zip"] = body
    (tmp_path / "x.zip.part").write_bytes(body[:3000])

    dest = fetch.download(
        server.url("/x.zip"),
        tmp_path / "x.zip",
        checksums={"sha256": hashlib.sha256(body).hexdigest()},
        quiet=True,
    )

    assert dest.read_bytes() == body
    assert not (tmp_path / "x.zip.part").exists()
    assert server.log == [("/x.zip", "bytes=3000-")]


def test_an_interrupted_download_keeps_its_part_and_the_next_run_finishes_it(server, tmp_path):
    body = bytes(range(200)) * 10
    server.files["/x.zip"] = body
    server.cut = 700
    checksums = {"sha256": hashlib.sha256(body).hexdigest()}
    url = server.url("/x.zip")

    with pytest.raises(fetch.DownloadError, match=r"connection lost after 700 of 2000 bytes"):
        fetch.download(url, tmp_path / "x.zip", checksums=checksums, quiet=True)
    assert (tmp_path / "x.zip.part").read_bytes() == body[:700]

    server.cut = None
    fetch.download(url, tmp_path / "x.zip", checksums=checksums, quiet=True)

    assert (tmp_path / "x.zip").read_bytes() == body
    assert server.log == [("/x.zip", None), ("/x.zip", "bytes=700-")]


def test_a_server_that_ignores_range_restarts_the_file(server, tmp_path):
    body = b"0123456789" * 100
    server.files["/x.bin"] = body
    server.ranges = False
    (tmp_path / "x.bin.part").write_bytes(b"stale prefix")

    fetch.download(server.url("/x.bin"), tmp_path / "x.bin", quiet=True)

    assert (tmp_path / "x.bin").read_bytes() == body
    assert server.log == [("/x.bin", "bytes=12-")]


def test_a_complete_part_file_is_verified_without_refetching(server, tmp_path):
    body = b"complete" * 10
    server.files["/x.bin"] = body
    (tmp_path / "x.bin.part").write_bytes(body)

    fetch.download(
        server.url("/x.bin"),
        tmp_path / "x.bin",
        checksums={"md5": hashlib.md5(body).hexdigest()},
        quiet=True,
    )

    assert (tmp_path / "x.bin").read_bytes() == body
    assert server.log == [("/x.bin", f"bytes={len(body)}-")]  # answered 416: nothing left


def test_checksum_mismatch_deletes_the_partial_download(server, tmp_path):
    body = b"not what was published"
    server.files["/x.zip"] = body
    actual = hashlib.sha256(body).hexdigest()

    with pytest.raises(fetch.DownloadError) as error:
        fetch.download(
            server.url("/x.zip"), tmp_path / "x.zip", checksums={"sha256": "ab" * 32}, quiet=True
        )

    assert f"sha256 mismatch: expected {'ab' * 32}, got {actual}" in str(error.value)
    assert str(error.value).startswith(server.url("/x.zip"))
    assert list(tmp_path.iterdir()) == []


def test_http_error_names_the_url_and_status(server, tmp_path):
    with pytest.raises(fetch.DownloadError, match=r"/missing\.zip: HTTP 404 Not Found$"):
        fetch.download(server.url("/missing.zip"), tmp_path / "m.zip", quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_offline_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    port = closed_port()
    url = f"http://127.0.0.1:{port}/maestro.zip"
    monkeypatch.setitem(download.DATASETS, "maestro", download.Archive(url, {}, "", "note"))

    with pytest.raises(SystemExit) as exit_:
        cli.run(lambda: download.main(["maestro", str(tmp_path / "out"), "--quiet"]))

    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"error: cannot reach 127.0.0.1:{port}: Connection refused\n"


@pytest.mark.parametrize(
    "evil", ["../evil.mid", "/tmp/evil.mid", "a/../../evil.mid", "C:/evil.mid", "a\\..\\evil.mid"]
)
def test_zip_paths_outside_the_folder_are_refused_before_writing(tmp_path, evil):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(make_zip({"fine/ok.mid": MIDI, evil: MIDI}))
    out = tmp_path / "out"

    with pytest.raises(fetch.DownloadError, match="refusing unsafe path"):
        fetch.extract_zip(archive, out, quiet=True)

    assert not out.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["evil.zip"]


def test_a_file_that_is_not_a_zip_is_a_clear_error(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(fetch.DownloadError, match=r"broken\.zip: not a usable zip archive"):
        fetch.extract_zip(archive, tmp_path / "out", quiet=True)


def test_scraper_downloads_linked_midi_files_and_skips_bad_ones(server, tmp_path):
    server.files["/midi_2004.asp"] = b"""<html><body>
        <a href="/MIDIFiles/2004/A.MID">A</a>
        <a href='MIDIFiles/2004/b%20c.mid'>B</a>
        <a href="/MIDIFiles/2004/A.MID">A again</a>
        <a href="/MIDIFiles/2004/gone.MID">gone</a>
        <a href="/MIDIFiles/2004/page.MID">an error page</a>
        <a href="/results.pdf">results</a>
        </body></html>"""
    server.files["/MIDIFiles/2004/A.MID"] = MIDI
    server.files["/MIDIFiles/2004/b%20c.mid"] = MIDI + b"\x01"
    server.files["/MIDIFiles/2004/page.MID"] = b"<html>sorry</html>"
    source = download.Pages({"2004": server.url("/midi_2004.asp")}, "note")
    out = tmp_path / "yamaha"

    lines = download.fetch_pages(source, out, quiet=True)

    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "2004",
        "2004/A.MID",
        "2004/b c.mid",
    ]
    assert (out / "2004" / "b c.mid").read_bytes() == MIDI + b"\x01"
    assert lines == [
        f"skipped {server.url('/MIDIFiles/2004/gone.MID')}: HTTP 404 Not Found",
        f"skipped {server.url('/MIDIFiles/2004/page.MID')}: not a Standard MIDI File",
        f"2 files downloaded into {out} (0 already there, 2 skipped)",
        "note",
    ]
    again = download.fetch_pages(source, out, quiet=True)
    assert again[-2] == f"0 files downloaded into {out} (2 already there, 2 skipped)"


def test_file_names_from_urls_are_unquoted_and_stay_in_their_folder():
    assert fetch.url_filename("http://h/MIDIFiles/2004/b%20c.MID?x=1") == "b c.MID"
    assert fetch.url_filename("http://h/MIDIFiles/2004/..%2F..%2Fevil.mid") == "evil.mid"


def test_scraper_offline_stops_at_once(tmp_path):
    port = closed_port()
    source = download.Pages({"2004": f"http://127.0.0.1:{port}/midi_2004.asp"}, "note")
    with pytest.raises(fetch.Unreachable, match=f"^cannot reach 127.0.0.1:{port}: "):
        download.fetch_pages(source, tmp_path, quiet=True)


def test_giantmidi_says_how_to_get_it_by_hand_as_a_script():
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "download.py"), "giantmidi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: giantmidi: GiantMIDI-Piano has no stable archive URL")
    assert result.stderr.count("\n") == 1


def test_published_maestro_facts_are_wired_in():
    maestro = download.DATASETS["maestro"]
    assert maestro.url.endswith("/maestro/v3.0.0/maestro-v3.0.0-midi.zip")
    assert re.fullmatch(r"[0-9a-f]{64}", maestro.checksums["sha256"])


def test_music21_export_writes_readable_piano_midi(tmp_path):
    music21 = pytest.importorskip("music21")
    pretty_midi = pytest.importorskip("pretty_midi")
    import export_music21

    scores = export_music21.corpus_scores("bach")
    assert len(scores) == 410  # 413 scores; bwv277, bwv281, bwv366 also come as .krn
    assert scores["bwv277"].suffix == ".mxl"
    assert not any(name.startswith("riemenschneider") for name in scores)  # analyses left out

    out = tmp_path / "bach"
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "export_music21.py"), "--limit", "2", "-j", "2", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"exported 2 scores to {out} (0 already there, 0 skipped)\n"
    assert sorted(p.name for p in out.iterdir()) == ["bwv1.6.mid", "bwv10.7.mid"]
    for name in ("bwv1.6", "bwv10.7"):
        midi = pretty_midi.PrettyMIDI(str(out / f"{name}.mid"))
        score = music21.converter.parse(scores[name]).expandRepeats().stripTies()
        notes = [note for part in midi.instruments for note in part.notes]
        assert len(notes) == len(score.flatten().pitches)
        assert {part.program for part in midi.instruments} == {0}
        assert {note.velocity for note in notes} == {90}  # chorales carry no dynamics

    again = export_music21.export("bach", out, jobs=1, limit=2, quiet=True)
    assert (again.exported, again.present, again.skipped) == (0, 2, [])
