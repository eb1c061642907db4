"""Re-sketching forward from a frame the artist edited (``dynasketch sketch --revise``), on a
clip whose subject moves and grows by a known amount each frame: the frames before the edit
stay to the byte, the edited frame is written as given, moved and drawn strokes follow the
subject to the end, deleted ones never come back, and only the frames after the edit are
sketched again."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from engine.ink.weight import PIECES

from media import write_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES = 24
SIZE = (112, 144)                    # height, width
START, SPEED, RADIUS, GROWTH = np.array([40.0, 54.0]), np.array([1.5, 0.25]), 20.0, 1.015


def subject_at(t: float) -> tuple[np.ndarray, float]:
    """The disc's centre and radius on frame ``t``: it moves right and grows."""
    return START + SPEED * t, RADIUS * GROWTH ** t


def carried(points, frm: int, to: int) -> np.ndarray:
    """Where points on the subject at frame ``frm`` are at frame ``to``."""
    (c0, r0), (c1, r1) = subject_at(frm), subject_at(to)
    return c1 + (np.asarray(points, float) - c0) * (r1 / r0)


def growing_disc() -> tuple[np.ndarray, np.ndarray]:
    """A disc with a fixed random texture, moving and growing: frames and masks."""
    h, w = SIZE
    rng = np.random.default_rng(7)
    texture = rng.integers(40, 230, (12, 12, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    frames, masks = [], []
    for t in range(FRAMES):
        (cx, cy), r = subject_at(t)
        u, v = (xx - cx) / r, (yy - cy) / r                       # the disc's own coordinates
        inside = u * u + v * v < 1
        tu = np.clip(((u + 1) * 6).astype(int), 0, 11)
        tv = np.clip(((v + 1) * 6).astype(int), 0, 11)
        img = np.full((h, w, 3), 240, np.uint8)
        img[inside] = texture[tv[inside], tu[inside]]
        frames.append(img)
        masks.append(inside.astype(np.uint8) * 255)
    return np.stack(frames), np.stack(masks)


def dynasketch(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def done_event(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("growing")
    frames, masks = growing_disc()
    video = write_video(str(folder / "disc.mp4"), frames)
    mask = write_video(str(folder / "disc.mask.mp4"), np.repeat(masks[..., None], 3, -1))
    return {"video": video, "mask": mask, "folder": folder}


def settings(clip) -> list:
    return ["--mask", clip["mask"], "--preset", "fast", "--strokes", 6, "--seeds", 1, "--no-preview",
            "--progress", "json"]


@pytest.fixture(scope="module")
def first_run(clip):
    out = clip["folder"] / "first"
    summary = done_event(dynasketch("sketch", clip["video"], "--out", out, *settings(clip)))
    return out, summary


@pytest.fixture
def run(first_run, tmp_path):
    """A copy of the earlier run's folder, to revise."""
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out)
    return out


def sketch_of(out) -> dict:
    return json.loads((out / "sketch.json").read_text())


def frame(doc: dict, index: int) -> dict:
    return next(f for f in doc["frames"] if f["index"] == index)


def folder_digest(out) -> dict:
    return {os.path.relpath(os.path.join(d, n), out): hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()
            for d, _, names in os.walk(out) for n in names if n not in ("dynasketch.log", "lock")}


def an_edit(doc: dict, at: int) -> dict:
    """What an artist does at frame ``at``: moves stroke 0 by 4 px, deletes stroke 2, and draws
    a stroke of two cubics on the subject, all locked; the rest as they were."""
    strokes = [dict(s) for s in frame(doc, at)["strokes"] if s["id"] != 2]
    strokes[0]["points"] = [[x + 4.0, y - 2.0] for x, y in strokes[0]["points"]]
    (cx, cy), r = subject_at(at)
    drawn = [[cx - 0.5 * r + 0.5 * r * k / 6, cy + 0.3 * r * np.sin(k / 2)] for k in range(7)]
    strokes.append({"id": 100, "points": [[round(x, 3), round(y, 3)] for x, y in drawn],
                    "widths": [1.0, 2.5, 1.0], "width": 2.0, "opacity": 0.9})
    return {"frame": at, "strokes": strokes, "source": doc["source"]}


def write_edit(tmp_path, edit: dict, name="edit.json"):
    path = tmp_path / name
    path.write_text(json.dumps(edit))
    return path


def test_a_revision_keeps_the_frames_before_and_carries_the_edit_to_the_end(clip, first_run, run, tmp_path):
    before = sketch_of(run)
    svgs = {i: (run / "svg" / f"frame_{i:06d}.svg").read_bytes() for i in range(FRAMES)}
    at = 10
    edit = an_edit(before, at)
    summary = done_event(dynasketch("sketch", clip["video"], "--out", run, *settings(clip),
                                    "--revise", write_edit(tmp_path, edit)))
    after = sketch_of(run)
    assert after["complete"] and [f["index"] for f in after["frames"]] == list(range(FRAMES))
    assert before["version"] == 1 and after["version"] == 2           # ids change at a revised frame
    # the frames before, to the byte (their records and their SVGs)
    assert after["frames"][:at] == before["frames"][:at]
    for i in range(at):
        assert json.dumps(after["frames"][i]) == json.dumps(before["frames"][i])
        assert (run / "svg" / f"frame_{i:06d}.svg").read_bytes() == svgs[i]
    # the edited frame as given, locked where the artist changed it
    written = frame(after, at)["strokes"]
    assert [s["id"] for s in written] == [s["id"] for s in edit["strokes"]]
    for got, given in zip(written, edit["strokes"]):
        assert got["points"] == given["points"]
        assert got.get("widths") == given.get("widths")
    assert written[0]["locked"] and written[-1]["locked"] and not written[1].get("locked")
    # the frames after: the same ids, deleted never back, moved and drawn strokes carried as drawn
    ids = [s["id"] for s in edit["strokes"]]
    moved, drawn = np.array(edit["strokes"][0]["points"]), np.array(edit["strokes"][-1]["points"])
    for t in range(at + 1, FRAMES):
        strokes = {s["id"]: s for s in frame(after, t)["strokes"]}
        assert list(strokes) == ids and 2 not in strokes
        for sid, shape in ((ids[0], moved), (100, drawn)):
            got, want = np.array(strokes[sid]["points"]), carried(shape, at, t)
            assert got.shape == want.shape
            error = np.linalg.norm(got - want, axis=1).mean()
            assert error < 1.0 + 0.12 * (t - at), (sid, t, error)     # tracked: a drift, not a jump
            assert strokes[sid]["locked"]
        assert strokes[100]["widths"] == [1.0, 2.5, 1.0] and strokes[100]["width"] == 2.0
        assert strokes[100]["opacity"] == 0.9
    # the shape is kept: the drawn stroke at the end is its drawing, moved and grown
    end = np.array(frame(after, FRAMES - 1)["strokes"][-1]["points"])
    spread = np.linalg.norm(end - end.mean(0), axis=1) / np.linalg.norm(drawn - drawn.mean(0), axis=1)
    assert np.allclose(spread, spread.mean(), rtol=0.02)                 # one zoom for all its points
    assert spread.mean() == pytest.approx(GROWTH ** (FRAMES - 1 - at), rel=0.12)
    # the cost: only the frames after the edit were sketched again
    assert first_run[1]["computed"] == FRAMES
    assert summary["computed"] == FRAMES - at - 1
    (record,) = after["revisions"]
    assert record["frame"] == at and record["moved"] == 1 and record["drawn"] == 1 and record["deleted"] == 1
    assert record["time"].startswith("20")


def test_the_same_edit_twice_changes_nothing_and_a_later_revision_builds_on_it(clip, run, tmp_path):
    edit = write_edit(tmp_path, an_edit(sketch_of(run), 6))
    done_event(dynasketch("sketch", clip["video"], "--out", run, *settings(clip), "--revise", edit))
    once = folder_digest(run)
    again = done_event(dynasketch("sketch", clip["video"], "--out", run, *settings(clip), "--revise", edit))
    assert again["computed"] == 0 and folder_digest(run) == once

    # a second revision from a later frame: the artist unlocks the drawn stroke and deletes stroke 1
    first = sketch_of(run)
    later = [dict(s) for s in frame(first, 16)["strokes"] if s["id"] != 1]
    for s in later:
        if s["id"] == 100:
            s["locked"] = False
    second = done_event(dynasketch("sketch", clip["video"], "--out", run, *settings(clip), "--revise",
                                   write_edit(tmp_path, {"frame": 16, "strokes": later}, "later.json")))
    assert second["computed"] == FRAMES - 17
    doc = sketch_of(run)
    assert doc["frames"][:16] == first["frames"][:16]
    assert [r["frame"] for r in doc["revisions"]] == [6, 16]
    for t in range(17, FRAMES):
        strokes = {s["id"]: s for s in frame(doc, t)["strokes"]}
        assert 1 not in strokes and 2 not in strokes and 100 in strokes
        assert not strokes[100].get("locked")                  # refined like the others now
        assert strokes[0]["locked"]                           # still as the first revision left it
        assert len(strokes[100]["points"]) == 3 * PIECES + 1   # a cubic of the run's size, cut for its
        assert len(strokes[100]["widths"]) == PIECES + 1       # line weight as the others (engine/ink)
        centre = np.array(strokes[100]["points"]).mean(0)
        (cx, cy), r = subject_at(t)
        assert np.hypot(*(centre - (cx, cy))) < 1.2 * r         # still on the subject


def test_a_revision_stopped_half_way_resumes(clip, run, tmp_path):
    edit = write_edit(tmp_path, an_edit(sketch_of(run), 4))
    args = [sys.executable, "-m", "engine", "sketch", clip["video"], "--out", str(run),
            *map(str, settings(clip)), "--revise", str(edit)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "progress" and event["stage"] == "optimise" and event["done"] >= 10:
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    partial = sketch_of(run)
    assert not partial["complete"] and 10 <= len(partial["frames"]) < FRAMES
    assert len(partial["revisions"]) == 1

    resumed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    summary = done_event(resumed)
    assert summary["computed"] == FRAMES - len(partial["frames"])       # went on, not again from 4
    doc = sketch_of(run)
    assert doc["complete"] and doc["frames"][:len(partial["frames"])] == partial["frames"]
    assert len(doc["revisions"]) == 1
    for t in range(5, FRAMES):
        strokes = {s["id"]: s for s in frame(doc, t)["strokes"]}
        assert 2 not in strokes and strokes[100]["locked"]
        error = np.linalg.norm(np.array(strokes[100]["points"]) - carried(np.array(
            frame(doc, 4)["strokes"][-1]["points"]), 4, t), axis=1).mean()
        assert error < 1.0 + 0.12 * (t - 4), (t, error)


def test_bad_edits_give_one_line_and_change_nothing(clip, run, tmp_path):
    doc = sketch_of(run)
    good = an_edit(doc, 5)
    short = json.loads(json.dumps(good))
    short["strokes"][1]["points"] = short["strokes"][1]["points"][:2]
    twice = json.loads(json.dumps(good))
    twice["strokes"][1]["id"] = twice["strokes"][0]["id"]
    other = json.loads(json.dumps(good))
    other["source"] = {"path": str(tmp_path / "another.mp4"), "frames": doc["source"]["frames"]}
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [({**good, "frame": FRAMES + 3}, run, "does not have"),
             (short, run, "at least 4"),
             (twice, run, "given twice"),
             (other, run, "is an edit of"),
             (good, empty, "no earlier run")]
    kept = folder_digest(run)
    for k, (edit, out, expected) in enumerate(cases):
        path = tmp_path / f"bad{k}.json"
        path.write_text(edit if isinstance(edit, str) else json.dumps(edit))
        result = dynasketch("sketch", clip["video"], "--out", out, *settings(clip), "--revise", path)
        lines = [line for line in result.stderr.strip().splitlines()]
        assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], (expected, result.stderr)
    assert folder_digest(run) == kept
    assert os.listdir(empty) == []


def test_a_damaged_sketch_is_named_and_rebuilt_from_the_resume_state(clip, run):
    whole = (run / "sketch.json").read_bytes()
    (run / "sketch.json").write_bytes(whole[: len(whole) // 2])        # cut short, as a full disk or a crash would
    summary = done_event(dynasketch("sketch", clip["video"], "--out", run, *settings(clip)))
    assert summary["computed"] == 0
    assert (run / "sketch.json").read_bytes() == whole
    assert "damaged; rebuilt from the resume state" in (run / "dynasketch.log").read_text()

    (run / "sketch.json").write_bytes(whole[:100])
    os.unlink(run / ".dynasketch" / "state.pt")                         # nothing to rebuild it from
    result = dynasketch("sketch", clip["video"], "--out", run, *settings(clip))
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "sketch.json is damaged" in line and "other settings" not in line and "--overwrite" in line
