"""download_mnist against a real HTTP server on 127.0.0.1 that the test starts."""
import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from helpers import SHIPPED_MNIST
from mindgan.data import download_mnist, load_mnist

NAMES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class Handler(BaseHTTPRequestHandler):
    """/good/ serves the real files (re-compressed, as another mirror would); /corrupt/ a valid
    gzip of wrong content; /cut/ closes the connection half way; anything else is a 404."""

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        if name not in NAMES or mode not in ("good", "corrupt", "cut"):
            self.send_error(404)
            return
        raw = gzip.decompress((SHIPPED_MNIST / name).read_bytes())
        if mode == "corrupt":
            raw = raw[:-1] + bytes([raw[-1] ^ 1])
        body = gzip.compress(raw, compresslevel=1)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mode == "cut" else body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_bad_mirrors_skipped_with_warning_then_good_one_used(tmp_path, server):
    mirrors = [f"{server}/cut/", f"{server}/missing/", f"{server}/corrupt/", f"{server}/good/"]
    with pytest.warns(UserWarning) as caught:
        paths = download_mnist(tmp_path, mirrors=mirrors, splits=("test",))
    assert sorted(p.name for p in paths) == sorted(NAMES)
    messages = [str(w.message) for w in caught]
    for bad in ("/cut/", "/missing/", "/corrupt/"):
        assert any(bad in m for m in messages), (bad, messages)
    assert any("404" in m for m in messages)
    assert any("does not match" in m for m in messages)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES)  # no temp files left
    images, labels = load_mnist("test", tmp_path)
    expected, _ = load_mnist("test", SHIPPED_MNIST)
    np.testing.assert_array_equal(images, expected)


@pytest.mark.parametrize("mode", ["corrupt", "cut", "missing"])
def test_only_bad_mirrors_leave_nothing(tmp_path, server, mode):
    with pytest.warns(UserWarning, match=f"/{mode}/"), pytest.raises(OSError, match="no mirror"):
        download_mnist(tmp_path, mirrors=[f"{server}/{mode}/"], splits=("test",))
    assert list(tmp_path.iterdir()) == []


def test_valid_existing_file_is_kept(tmp_path, server, closed_port_url):
    download_mnist(tmp_path, mirrors=[f"{server}/good/"], splits=("test",))
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    download_mnist(tmp_path, mirrors=[closed_port_url], splits=("test",))  # no fetch needed
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_load_mnist_downloads_into_cache_when_nothing_found(tmp_path, server, monkeypatch):
    import mindgan.data as data

    monkeypatch.delenv("MINDGAN_DATA", raising=False)
    monkeypatch.setattr(data, "PROJECT_DATA_DIR", tmp_path / "no-repo")
    monkeypatch.setenv("MINDGAN_CACHE", str(tmp_path / "cache"))
    images, _ = load_mnist("test", mirrors=[f"{server}/good/"])
    assert images.shape == (10000, 28, 28)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(NAMES)


def test_cli_download_without_network_is_one_line_and_leaves_nothing(tmp_path, closed_port_url):
    import subprocess
    import sys

    from helpers import REPO

    dest = tmp_path / "new" / "mnist"
    proc = subprocess.run([sys.executable, "-m", "mindgan.data", "--download", str(dest),
                           "--mirror", closed_port_url], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert closed_port_url in lines[0] and "refused" in lines[0].lower() and "by hand" in lines[0]
    assert not dest.exists() and not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())
