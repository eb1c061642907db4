"""The model manager against a local HTTP server on 127.0.0.1: good file, truncated file,
wrong checksum, resume with a Range request, and the `dynasketch models` command."""
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest

from engine.errors import EngineError
from engine.models import ModelFile, check_file, download, require
from model_server import PAYLOAD, Handler, serving

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def server():
    with serving() as url:
        yield url


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
    path = download(vouched, str(tmp_path), progress=False)
    assert open(path, "rb").read() == PAYLOAD


def test_a_file_checked_against_the_servers_checksum_is_checked_against_it_from_then_on(server, tmp_path):
    """The SHA-256 the server named is kept beside the file: a CoTracker file damaged later
    (a bad copy, a disk error) is caught by a run and by `models verify`, not only a missing
    one, and `models download` fetches it again. A file put there by hand is taken as it is."""
    unpublished = spec(f"{server}/hub/{hashlib.sha256(PAYLOAD).hexdigest()}", sha256=None, size=None)
    path = download(unpublished, str(tmp_path), progress=False)
    assert open(path + ".sha256").read().strip() == hashlib.sha256(PAYLOAD).hexdigest()
    assert check_file(unpublished, path) is None
    with open(path, "r+b") as f:                      # damaged in place, the same size
        f.write(b"\0" * 16)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    assert check_file(unpublished, path) == "wrong checksum (sha256)"
    assert check_file(unpublished, path, thorough=True) == "wrong checksum (sha256)"
    assert open(download(unpublished, str(tmp_path), progress=False), "rb").read() == PAYLOAD
    assert check_file(unpublished, path, thorough=True) is None
    by_hand = tmp_path / "by hand"
    by_hand.mkdir()
    (by_hand / "weights.pth").write_bytes(b"a checkpoint copied from another machine")
    assert check_file(unpublished, str(by_hand / "weights.pth"), thorough=True) is None
    # a later download the server vouches nothing for drops the old file's checksum
    os.unlink(path)
    download(spec(f"{server}/good", sha256=None, size=None), str(tmp_path), progress=False)
    assert not os.path.exists(path + ".sha256") and check_file(unpublished, path, thorough=True) is None


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


def models_command(*args, home, mirror):
    env = {**os.environ, "DYNASKETCH_HOME": str(home), "DYNASKETCH_MODEL_MIRROR": mirror}
    return subprocess.Popen([sys.executable, "-m", "engine", "models", *args, "--progress", "json"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_download_command_reports_json_lines_and_reads_a_mirror(server, tmp_path):
    """What the Blender add-on runs: JSON progress lines in bytes, files from a mirror (by
    file name), checked against the table all the same."""
    run = models_command("download", "cotracker3-offline", home=tmp_path, mirror=f"{server}/mirror/")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["event"] == "start" and events[0]["out"] == str(tmp_path)
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and all(e["model"] == "cotracker3-offline" and e["stage"] == "download" for e in progress)
    assert (progress[-1]["done"], progress[-1]["total"]) == (len(PAYLOAD), len(PAYLOAD))
    assert events[-1]["event"] == "done"
    assert (tmp_path / "scaled_offline.pth").read_bytes() == PAYLOAD

    run = models_command("download", "clip-vit-b-32", home=tmp_path, mirror=f"{server}/mirror")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 2
    last = json.loads(out.splitlines()[-1])
    assert last["event"] == "error" and "clip-vit-b-32 is corrupt" in last["message"]
    assert err.strip().splitlines() == [f"dynasketch: error: {last['message']}"]
    assert sorted(os.listdir(tmp_path)) == ["scaled_offline.pth", "scaled_offline.pth.verified"]


@pytest.mark.parametrize("stop", ["SIGTERM", "reader exits"])
def test_a_stopped_download_says_so_in_one_line_and_resumes(server, tmp_path, stop):
    """Stopped by SIGTERM (Cancel in Blender), or by its reader exiting (Blender quit)."""
    run = models_command("download", "cotracker3-offline", home=tmp_path, mirror=f"{server}/slow")
    for line in run.stdout:
        if json.loads(line)["done"] > 0:
            break
    if stop == "SIGTERM":
        run.send_signal(signal.SIGTERM)
    else:
        run.stdout.close()
    run.wait(timeout=30)
    err = run.stderr.read()
    assert run.returncode == 130
    assert err.strip().splitlines() == ["dynasketch: download stopped; run the same command again to resume"]
    part = tmp_path / "scaled_offline.pth.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    had = part.stat().st_size
    Handler.ranges.clear()
    run = models_command("download", "cotracker3-offline", home=tmp_path, mirror=server)
    assert run.wait(timeout=120) == 0
    assert Handler.ranges == [had]
    assert (tmp_path / "scaled_offline.pth").read_bytes() == PAYLOAD


def test_a_model_folder_that_cannot_be_made_is_one_line(server, tmp_path):
    """DYNASKETCH_HOME (or the add-on's Models Folder) somewhere that cannot hold a folder."""
    (tmp_path / "a-file").write_text("not a folder")
    home = tmp_path / "a-file" / "models"
    run = models_command("download", "cotracker3-offline", home=home, mirror=f"{server}/mirror/")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 2, err
    assert err.strip().splitlines() == [f"dynasketch: error: cannot create the model folder {home} (Not a "
                                        "directory); set DYNASKETCH_HOME to a folder you can write to"]
    assert json.loads(out.splitlines()[-1])["event"] == "error"


def test_a_full_disk_stops_a_download_in_one_line_and_it_resumes_once_there_is_room(server, small_disk):
    disk, grow = small_disk                                              # 64 KiB; the file is 300 KiB
    run = models_command("download", "cotracker3-offline", home=disk, mirror=f"{server}/mirror/")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 2, err
    part = disk / "scaled_offline.pth.part"
    assert err.strip().splitlines() == [f"dynasketch: error: cannot write {part}: No space left on device; "
                                        "free some space or set DYNASKETCH_HOME to another folder, then "
                                        "run the same command again to resume"]
    had = part.stat().st_size
    assert 0 < had < len(PAYLOAD) and not (disk / "scaled_offline.pth").exists()
    grow(2 << 20)
    Handler.ranges.clear()
    run = models_command("download", "cotracker3-offline", home=disk, mirror=f"{server}/mirror/")
    assert run.wait(timeout=120) == 0
    assert Handler.ranges == [had]
    assert (disk / "scaled_offline.pth").read_bytes() == PAYLOAD
