"""`manage.py download_weights --sam`: a checked download from a local server, and the way by hand when offline."""
from __future__ import annotations

import hashlib
import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ml.sam import PUBLISHED, Published
from tests.sam import TINY, TINY_SAM2

OFFICIAL = "https://dl.fbaipublicfiles.com/test"


class Files(BaseHTTPRequestHandler):
    """Serves ``files`` by path; a path in ``truncated`` announces its full size but sends half."""

    files: dict[str, bytes] = {}
    truncated: set[str] = set()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path in self.truncated else body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tiny_sam_file: Path, tiny_sam2_file: Path) -> Iterator[str]:
    Files.files = {"/sam1.pth": tiny_sam_file.read_bytes(), "/sam2.pt": tiny_sam2_file.read_bytes()}
    Files.truncated = {"/cut.pt"}
    Files.files["/cut.pt"] = Files.files["/sam2.pt"]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def weights_dir(settings, tmp_path, tiny_variants, tiny_sam_file, monkeypatch) -> Path:
    """ANNOTATOR_MODEL_DIR in tmp, and the tiny models published under made-up official addresses."""
    settings.ANNOTATOR_MODEL_DIR = tmp_path
    settings.ANNOTATOR_SAM_CHECKPOINT = None
    md5 = hashlib.md5(tiny_sam_file.read_bytes(), usedforsecurity=False).hexdigest()
    monkeypatch.setitem(PUBLISHED, TINY, Published(f"{OFFICIAL}/sam_{TINY}_{md5[:6]}.pth", md5, 1))
    monkeypatch.setitem(PUBLISHED, TINY_SAM2, Published(f"{OFFICIAL}/{TINY_SAM2}.pt", None, 1))
    return tmp_path / "sam"


def download(*args: str) -> str:
    out = io.StringIO()
    call_command("download_weights", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_sam_2_1_checkpoint_is_downloaded_checked_and_named_as_published(server, weights_dir, tiny_sam2_file) -> None:
    out = download("--sam", TINY_SAM2, "--url", f"{server}/sam2.pt")
    target = weights_dir / f"{TINY_SAM2}.pt"
    assert target.read_bytes() == tiny_sam2_file.read_bytes()
    assert f"ANNOTATOR_SAM_CHECKPOINT={target}" in out
    assert [p.name for p in weights_dir.iterdir()] == [target.name], "no partial files are left behind"
    assert "Already downloaded" in download("--sam", TINY_SAM2)  # checked again, not fetched


def test_a_sam_1_checkpoint_must_have_the_published_md5(server, weights_dir, tiny_sam_file, monkeypatch) -> None:
    good = PUBLISHED[TINY]
    monkeypatch.setitem(PUBLISHED, TINY, Published(good.url, "0" * 32, 1))
    with pytest.raises(CommandError, match=f"has MD5 {good.md5}, the published {TINY} file has 0000"):
        download("--sam", TINY, "--url", f"{server}/sam1.pth")
    assert not weights_dir.exists() or not any(weights_dir.iterdir())
    PUBLISHED[TINY] = good
    download("--sam", TINY, "--url", f"{server}/sam1.pth")
    assert (weights_dir / good.filename).read_bytes() == tiny_sam_file.read_bytes()


def test_a_file_of_another_variant_or_a_cut_transfer_is_refused_and_not_kept(server, weights_dir) -> None:
    with pytest.raises(CommandError, match=f"holds SAM variant {TINY}, not {TINY_SAM2}"):
        download("--sam", TINY_SAM2, "--url", f"{server}/sam1.pth")
    # urllib does not notice a body shorter than its Content-Length; the check does (a torch zip
    # file keeps its directory at the end, and SAM 1 files have their MD5).
    with pytest.raises(CommandError, match="not a readable PyTorch checkpoint"):
        download("--sam", TINY_SAM2, "--url", f"{server}/cut.pt")
    with pytest.raises(CommandError, match="HTTP Error 404"):
        download("--sam", TINY_SAM2, "--url", f"{server}/missing.pt")
    assert not any(weights_dir.iterdir())


def test_offline_the_command_says_where_to_get_the_file_where_to_put_it_and_what_to_set(weights_dir) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(CommandError) as error:
        download("--sam", TINY_SAM2, "--url", f"http://127.0.0.1:{closed}/sam2.pt", "--timeout", "1")
    message = str(error.value)
    target = weights_dir / f"{TINY_SAM2}.pt"
    assert "cannot reach 127.0.0.1" in message
    assert f"download {OFFICIAL}/{TINY_SAM2}.pt" in message, "the official address, not the mirror"
    assert f"copy it here to {target}" in message and f"ANNOTATOR_SAM_CHECKPOINT={target}" in message


def test_a_file_placed_by_hand_is_checked(weights_dir, tiny_sam_file) -> None:
    weights_dir.mkdir(parents=True)
    (weights_dir / f"{TINY_SAM2}.pt").write_bytes(tiny_sam_file.read_bytes())  # the wrong model
    with pytest.raises(CommandError, match="is not the published .*Delete it"):
        download("--sam", TINY_SAM2)


def test_url_without_sam_is_refused() -> None:
    with pytest.raises(CommandError, match="--url only applies with --sam"):
        download("--url", "http://127.0.0.1:1/x")
