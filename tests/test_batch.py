"""dynasketch batch: a shot list on a real Ray (a local one, and a `ray start --head` cluster
with fake GPUs), a bad shot among good ones, a worker killed mid-shot, a chunked shot's seams."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

pytest.importorskip("ray")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
FAST = {"preset": "fast", "strokes": 4, "seeds": 1, "no-preview": "true"}


def batch(*args, timeout=240, env=None):
    return subprocess.run([sys.executable, "-m", "engine", "batch", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def write_csv(path, rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = [",".join(keys)] + [",".join(str(row.get(k, "")) for k in keys) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def record(root) -> dict:
    return {s["out"]: s for s in json.loads((root / "batch.json").read_text())["shots"]}


def sketch(folder) -> dict:
    return json.loads((folder / "sketch.json").read_text())


def points(doc) -> np.ndarray:
    return np.array([[s["points"] for s in f["strokes"]] for f in doc["frames"]], np.float64)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The project's own sample clip (`python -m engine sample`) and its mask, 24 frames."""
    folder = tmp_path_factory.mktemp("sample")
    result = subprocess.run([sys.executable, "-m", "engine", "sample", str(folder / "sample.mp4"), "--mask",
                             str(folder / "sample.mask.mp4"), "--frames", "24"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return folder


def test_a_bad_shot_fails_alone_and_a_finished_shot_is_skipped(sample, tmp_path):
    """A local Ray started on the spot; a JSON list whose paths are under a folder this machine
    mounts elsewhere (--path-map); a missing clip and a bad option fail alone, with their one line."""
    elsewhere = "/mnt/studio-share"
    shots = tmp_path / "shots.json"
    good = {"mask": f"{elsewhere}/sample.mask.mp4", "frames": "0:6", **FAST}
    shots.write_text(json.dumps([
        {"clip": f"{elsewhere}/sample.mp4", "out": "sq010/a", **good},
        {"clip": f"{elsewhere}/missing.mp4", "out": "sq010/b", **good},
        {"clip": f"{elsewhere}/sample.mp4", "out": "sq010/c", **good, "strokes": "many"},
        {"clip": f"{elsewhere}/sample.mp4", "out": "sq010/d", **good, "frames": "6:12"},
    ]))
    root = tmp_path / "root"
    result = batch(shots, "--out", root, "--path-map", f"{elsewhere}={sample}")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert any(line.startswith("dynasketch: shot sq010/b: error: input not found") for line in lines)
    assert any(line.startswith("dynasketch: shot sq010/c: error:") and "--strokes" in line for line in lines)
    shots_done = record(root)
    assert {k: v["state"] for k, v in shots_done.items()} == {
        "sq010/a": "done", "sq010/b": "failed", "sq010/c": "failed", "sq010/d": "done"}
    for name, frames in (("sq010/a", list(range(6))), ("sq010/d", list(range(6, 12)))):
        entry, doc = shots_done[name], sketch(root / name)
        assert doc["complete"] and [f["index"] for f in doc["frames"]] == frames
        assert doc["source"]["path"] == str(sample / "sample.mp4")          # the mapped path
        assert entry["device"] == "cpu" and entry["machine"] == socket.gethostname()
        assert entry["seconds"] > 0 and entry["frames"] == 6 and entry["error"] is None
    assert "not found" in shots_done["sq010/b"]["error"]

    # The same list again: the done shots are skipped (their sketches untouched), the bad ones fail again.
    before = (root / "sq010/a/sketch.json").stat().st_mtime_ns
    again = batch(shots, "--out", root, "--path-map", f"{elsewhere}={sample}", "--progress", "json")
    assert again.returncode == 2
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "error"
    assert all({"event", "stage", "done", "total", "message"} <= set(e) for e in events)
    states = {e["shot"]: e["state"] for e in events if e["event"] == "shot" and e["state"] in ("done", "failed")}
    assert states == {"sq010/a": "done", "sq010/b": "failed", "sq010/c": "failed", "sq010/d": "done"}
    assert not any(e["event"] == "progress" and e["stage"] == "optimise" for e in events)
    assert (root / "sq010/a/sketch.json").stat().st_mtime_ns == before
    assert record(root)["sq010/a"]["skipped"] is True


def test_a_bad_shot_list_is_one_line(tmp_path):
    shots = write_csv(tmp_path / "shots.csv", [{"clip": "a.mp4", "out": "a", "strokez": 4}])
    result = batch(shots, "--out", tmp_path / "root")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "unknown column 'strokez'" in result.stderr and "strokes" in result.stderr


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head` on 127.0.0.1 with 2 CPUs and 2 fake GPUs, in its own temp folder (so
    no other Ray on this machine finds it); stopped, with everything it started, at the end."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")             # short: Ray's socket paths
    log = open(os.path.join(temp, "head.log"), "w")
    head = subprocess.Popen([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                             "--num-cpus", "2", "--num-gpus", "2", "--temp-dir", temp, "--disable-usage-stats",
                             "--include-dashboard", "false", "--block"], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": ROOT, "RAY_ADDRESS": ""})
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "block forever" not in open(log.name).read():
            assert head.poll() is None, open(log.name).read()
            time.sleep(0.5)
        assert "block forever" in open(log.name).read(), open(log.name).read()
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
        log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster_run(cluster, sample, tmp_path_factory):
    """Three shots on the cluster (by --address); the first one's worker is killed (SIGKILL)
    once it has finished a frame. Returns (root, result, events)."""
    folder = tmp_path_factory.mktemp("cluster")
    root = folder / "root"
    shots = write_csv(folder / "shots.csv", [
        {"clip": sample / "sample.mp4", "out": "long", "mask": sample / "sample.mask.mp4", "frames": "0:24", **FAST},
        {"clip": sample / "sample.mp4", "out": "b", "mask": sample / "sample.mask.mp4", "frames": "0:6", **FAST},
        {"clip": sample / "sample.mp4", "out": "c", "mask": sample / "sample.mask.mp4", "frames": "6:12", **FAST},
    ])
    proc = subprocess.Popen([sys.executable, "-m", "engine", "batch", shots, "--out", str(root), "--address", cluster,
                             "--progress", "json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events, killed = [], None
    try:
        pid = None
        for line in proc.stdout:
            event = json.loads(line)
            events.append(event)
            if event["event"] == "shot" and event["shot"] == "long" and event["state"] == "running":
                pid = event["pid"]
            if (killed is None and pid and event["event"] == "progress" and event["shot"] == "long"
                    and 1 <= event["shot_done"] < event["shot_total"]):
                os.kill(pid, signal.SIGKILL)           # the worker dies mid-shot
                killed = (pid, event["shot_done"])
        proc.wait(240)
    finally:
        if proc.poll() is None:
            proc.kill()
    return root, proc.returncode, proc.stderr.read(), events, killed


def test_one_shot_per_gpu_with_cuda_visible_devices_set(cluster_run):
    root, code, stderr, events, killed = cluster_run
    assert code == 0, stderr
    assert "2 GPUs" in events[0]["message"] and "the Ray cluster at 127.0.0.1" in events[0]["message"]
    shots = record(root)
    assert {s["state"] for s in shots.values()} == {"done"}
    # every shot ran with one of the two GPUs, and two shots at once never had the same one
    # (the killed worker's GPU is free once it died)
    assert all(s["gpus"] in ("0", "1") for s in shots.values())
    running = [e for e in events if e["event"] == "shot" and e["state"] in ("running", "done")]
    holding: dict = {}
    for e in running:
        holding.pop(e["shot"], None)
        holding = {shot: (gpu, pid) for shot, (gpu, pid) in holding.items() if not killed or pid != killed[0]}
        if e["state"] == "running":
            assert e["gpus"] not in [gpu for gpu, _ in holding.values()], running
            holding[e["shot"]] = (e["gpus"], e["pid"])
        assert len(holding) <= 2


def test_a_killed_worker_is_retried_and_resumes(cluster_run):
    root, code, stderr, events, killed = cluster_run
    assert code == 0, stderr
    assert killed, "the long shot finished before its worker could be killed"
    pid, done = killed
    entry = record(root)["long"]
    assert entry["state"] == "done" and entry["attempts"] == 2 and entry["pid"] != pid
    doc = sketch(root / "long")
    assert doc["complete"] and [f["index"] for f in doc["frames"]] == list(range(24))
    log = (root / "long" / "dynasketch.log").read_text()
    resumed = [line for line in log.splitlines() if "resuming after" in line]
    assert len(resumed) == 1 and int(resumed[0].split("resuming after ")[1].split()[0]) >= done


def test_a_long_shot_in_chunks_has_one_set_of_strokes_and_no_jump_at_the_seams(sample, tmp_path):
    chunk, overlap = 8, 4
    shots = write_csv(tmp_path / "shots.csv", [
        {"clip": sample / "sample.mp4", "out": "long", "mask": sample / "sample.mask.mp4", "frames": "0:24", **FAST,
         "strokes": 6},
        {"clip": sample / "sample.mp4", "out": "short", "mask": sample / "sample.mask.mp4", "frames": "0:6", **FAST}])
    root = tmp_path / "root"
    result = batch(shots, "--out", root, "--chunk", chunk, "--overlap", overlap)
    assert result.returncode == 0, result.stderr
    short = record(root)["short"]                     # no longer than a chunk: sketched in one piece
    assert short["state"] == "done" and "chunks" not in short and not (root / "short" / ".dynasketch" / "chunks").exists()
    assert [f["index"] for f in sketch(root / "short")["frames"]] == list(range(6))
    entry, doc = record(root)["long"], sketch(root / "long")
    assert entry["state"] == "done" and entry["chunks"] == 3
    assert doc["complete"] and [f["index"] for f in doc["frames"]] == list(range(24))
    assert doc["source"]["frames"] == [0, 24, 1]
    assert all([s["id"] for s in f["strokes"]] == list(range(6)) for f in doc["frames"])
    assert len(list((root / "long" / "svg").glob("frame_*.svg"))) == 24
    # each chunk started from the keyframe's strokes, and away from the seams the frames are its own
    chunks = root / "long" / ".dynasketch" / "chunks"
    keys, second = sketch(chunks / "keys"), sketch(chunks / "chunk-001")
    assert [f["index"] for f in keys["frames"]] == [0, 8, 16]
    assert np.allclose(points(second)[0], points(keys)[1], atol=0.01)     # sketch.json rounds to 0.001 px
    ours = points(doc)
    own = points(second)[overlap:8]              # the chunk's own frames, under its own ids
    ids = [int(np.abs(ours[8 + overlap] - stroke).sum(axis=(1, 2)).argmin()) for stroke in own[0]]
    assert sorted(ids) == list(range(6))          # the ids the stitch gave them (chunks.matching_ids)
    assert np.allclose(ours[8 + overlap:16][:, ids], own)
    # no jump at the seams. Any sketch re-seeds a stroke now and then (a knot, a lost stroke:
    # engine/temporal), which moves that one stroke far in one frame, on a seam or not; what
    # the seams must not do is move the drawing: most strokes move there as on other frames,
    move = np.linalg.norm(ours[1:] - ours[:-1], axis=-1).mean(axis=-1)      # (23, 6): move[t, n], t -> t+1
    typical = np.median(move, axis=1)
    seams = [t for s in (8, 16) for t in range(s - 1, s + overlap)]
    elsewhere = np.delete(typical, seams)
    assert typical[seams].max() < 1.5 * np.percentile(elsewhere, 90), (typical.round(1).tolist(), seams)
    # and the stitch adds no move of its own: each stroke moves at a seam at most as it moves
    # in the chunks that drew those frames, plus a slide (the chunks' disagreement spread over
    # the overlap) well under a usual frame's move
    own = np.zeros_like(move)
    for k, first in enumerate((0, 8, 16)):
        drawn = points(sketch(chunks / f"chunk-{k:03d}"))                   # frames first.. of the shot
        pure = min(first + overlap, 23) if k else 0                         # first frame that is its own
        order = [next(n for n in range(6) if np.allclose(drawn[pure - first, n], ours[pure, m])) for m in range(6)]
        drawn = drawn[:, order]                                            # in the stitched sketch's ids
        steps = np.linalg.norm(drawn[1:] - drawn[:-1], axis=-1).mean(axis=-1)
        own[first:first + len(steps)] = np.maximum(own[first:first + len(steps)], steps)
    slide = move[seams] - own[seams]
    assert slide.max() < 0.5 * np.median(elsewhere), (slide.round(1).tolist(), seams)
