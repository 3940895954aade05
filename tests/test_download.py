"""download_mnist against a real HTTP server on 127.0.0.1 that the test starts."""
import gzip
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest
from helpers import SHIPPED_MNIST, serve

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
    yield from serve(Handler)


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


# ------------------------------------------------------------------ the DCGAN tutorial's faces.zip

def faces_zip_bytes(jpegs=3) -> bytes:
    """A small stand-in for faces.zip: JPEGs under faces/, as the tutorial's archive holds them."""
    import io
    import zipfile

    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(jpegs):
            picture = io.BytesIO()
            Image.new("RGB", (96, 96), (40 * i, 90, 200)).save(picture, "JPEG")
            z.writestr(f"faces/{i}.jpg", picture.getvalue())
        if not jpegs:
            z.writestr("faces/readme.txt", "no pictures")
    return buf.getvalue()


class FacesHandler(BaseHTTPRequestHandler):
    """/faces.zip a good archive; /cut.zip stops half way (the length announced);
    /cut-unannounced.zip stops half way with no length; /nojpeg.zip holds none."""

    def do_GET(self):
        name = self.path.strip("/")
        body = faces_zip_bytes(0 if name == "nojpeg.zip" else 3)
        self.send_response(200)
        if name != "cut-unannounced.zip":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if name.startswith("cut") else body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def faces_server():
    yield from serve(FacesHandler)


def test_faces_zip_downloads_verified_and_trains_from_the_zip(tmp_path, faces_server):
    from mindgan.images import Preprocess, download_faces, load_images

    path = download_faces(tmp_path / "faces", f"{faces_server}/faces.zip")
    assert path == tmp_path / "faces" / "faces.zip" and sorted(p.name for p in path.parent.iterdir()) == ["faces.zip"]
    images = load_images(path, Preprocess(64), cache=False, progress=False)
    assert images.shape == (3, 3, 64, 64)
    before = path.stat().st_mtime_ns
    download_faces(tmp_path / "faces", f"{faces_server}/cut.zip")  # a valid copy is kept, not fetched
    assert path.stat().st_mtime_ns == before


@pytest.mark.parametrize("name, reason", [
    ("cut.zip", "connection closed after"),
    ("cut-unannounced.zip", "not a complete zip"),
    ("nojpeg.zip", "without any jpeg"),
    ("refused", "refused"),
])
def test_a_broken_faces_download_leaves_nothing_behind(tmp_path, faces_server, closed_port_url,
                                                       name, reason):
    from mindgan.images import download_faces

    url = closed_port_url + "faces.zip" if name == "refused" else f"{faces_server}/{name}"
    with pytest.raises(OSError) as info:
        download_faces(tmp_path / "new", url)
    assert url in str(info.value) and reason in str(info.value).lower() and "\n" not in str(info.value)
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(OSError):
        download_faces(tmp_path / "kept", url)
    assert list((tmp_path / "kept").iterdir()) == []  # an existing folder stays, empty


def test_cli_faces_download_offline_is_one_line(tmp_path, closed_port_url):
    import subprocess
    import sys

    from helpers import REPO

    proc = subprocess.run([sys.executable, "-m", "mindgan.data", "--download", "faces", "--dest",
                           str(tmp_path / "faces"), "--url", closed_port_url + "faces.zip"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "by hand" in lines[0] and "--data_dir" in lines[0] and not (tmp_path / "faces").exists()
