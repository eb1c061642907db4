"""The model manager against a local HTTP server on 127.0.0.1: good file, truncated file,
wrong checksum, resume with a Range request, and the `dynasketch models` command."""
import dataclasses
import hashlib
import http.server
import os
import subprocess
import sys
import threading

import pytest

from engine.errors import EngineError
from engine.models import ModelFile, check_file, download, require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAYLOAD = os.urandom(300_000)


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /good, honours Range; /cut sends a third of it then hangs up;
    /hub/<sha256> redirects to /good as Hugging Face does, naming the file's SHA-256 and size."""

    ranges = []

    def do_GET(self):
        if self.path.startswith("/hub/"):
            self.send_response(302)
            self.send_header("Location", "/good")
            self.send_header("X-Linked-Etag", f'"{self.path[len("/hub/"):]}"')
            self.send_header("X-Linked-Size", str(len(PAYLOAD)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            Handler.ranges.append(start)
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/cut":
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def spec(url, **kw):
    return ModelFile("test-model", "weights.pth", url, "tests",
                     **({"sha256": hashlib.sha256(PAYLOAD).hexdigest(), "size": len(PAYLOAD)} | kw))


def test_good_file_downloads_and_verifies(server, tmp_path):
    path = download(spec(f"{server}/good"), str(tmp_path), progress=False)
    assert open(path, "rb").read() == PAYLOAD
    assert check_file(spec(""), path) is None
    assert not os.path.exists(path + ".part")


def test_wrong_checksum_never_replaces_a_good_file(server, tmp_path):
    good = tmp_path / "weights.pth"
    good.write_bytes(b"an older good file")
    wrong = spec(f"{server}/good", sha256="0" * 64, size=None)
    with pytest.raises(EngineError, match="corrupt: wrong checksum"):
        download(wrong, str(tmp_path), progress=False)
    assert good.read_bytes() == b"an older good file"
    assert not (tmp_path / "weights.pth.part").exists()
    md5 = spec(f"{server}/good", sha256=None, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert open(download(md5, str(tmp_path), progress=False), "rb").read() == PAYLOAD


def test_a_file_with_no_published_checksum_is_checked_against_the_servers(server, tmp_path):
    """CoTracker's files have no checksum in the table; Hugging Face names each file's SHA-256
    when it redirects to it, and the download must match it."""
    unpublished = spec("", sha256=None, size=None)
    with pytest.raises(EngineError, match="corrupt: wrong checksum"):
        download(dataclasses.replace(unpublished, url=f"{server}/hub/{'0' * 64}"), str(tmp_path), progress=False)
    assert not os.listdir(tmp_path)                                  # nothing kept of it
    vouched = dataclasses.replace(unpublished, url=f"{server}/hub/{hashlib.sha256(PAYLOAD).hexdigest()}")
    assert open(download(vouched, str(tmp_path), progress=False), "rb").read() == PAYLOAD


def test_truncated_download_resumes_with_a_range_request(server, tmp_path):
    with pytest.raises(EngineError, match="run the same command again to resume"):
        download(spec(f"{server}/cut"), str(tmp_path), progress=False)
    part = tmp_path / "weights.pth.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    assert not (tmp_path / "weights.pth").exists()
    Handler.ranges.clear()
    path = download(spec(f"{server}/good"), str(tmp_path), progress=False)
    assert Handler.ranges == [len(PAYLOAD) // 3]
    assert open(path, "rb").read() == PAYLOAD


def test_missing_or_corrupt_weights_name_the_file_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNASKETCH_HOME", str(tmp_path))
    with pytest.raises(EngineError, match=r"RN101.pt is missing; run `dynasketch models download clip-rn101`"):
        require("clip-rn101")
    (tmp_path / "RN101.pt").write_bytes(b"not the weights")
    with pytest.raises(EngineError, match=r"RN101.pt has a wrong checksum \(sha256\); run `dynasketch"):
        require("clip-rn101")


def test_models_command(tmp_path):
    env = {**os.environ, "DYNASKETCH_HOME": str(tmp_path)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "engine", "models", *a], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True, env=env)
    listing = run("list")
    assert listing.returncode == 0 and "clip-rn101" in listing.stdout and "missing" in listing.stdout
    assert run("path").stdout.strip() == str(tmp_path)
    assert run("verify", "inspyrenet-fast").returncode == 1
    bad = run("download", "no-such-model")
    assert bad.returncode == 2 and bad.stderr.startswith("dynasketch: error: unknown model")


def test_a_verified_file_is_hashed_once_until_it_changes(server, tmp_path, monkeypatch):
    from engine import models

    model = spec(f"{server}/good", size=None)
    path = download(model, str(tmp_path), progress=False)
    hashed = []
    real_digest = models.file_digest
    monkeypatch.setattr(models, "file_digest", lambda p, a: hashed.append(p) or real_digest(p, a))
    assert check_file(model, path) is None and check_file(model, path) is None
    assert hashed == []                                  # the download already checked it
    assert check_file(model, path, thorough=True) is None and len(hashed) == 1
    # the same size, other bytes, a later time: hashed again, and caught
    with open(path, "r+b") as f:
        f.write(b"\0" * 16)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    assert check_file(model, path) == "wrong checksum (sha256)"
    assert check_file(model, path) == "wrong checksum (sha256)" and len(hashed) == 3


def test_download_rechecks_a_file_even_when_it_was_verified_before(server, tmp_path):
    model = spec(f"{server}/good", size=None)
    path = download(model, str(tmp_path), progress=False)
    times = os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns
    with open(path, "r+b") as f:            # damaged in place, its time put back
        f.write(b"\0" * 16)
    os.utime(path, ns=times)
    assert check_file(model, path, thorough=True) == "wrong checksum (sha256)"
    assert open(download(model, str(tmp_path), progress=False), "rb").read() == PAYLOAD
