"""The subject the artist picks (`--subject`), followed on every frame, and the trust check on
network masks: on clips made here (two subjects; a mask that jumps), with the real optical
flow and, where scripts/setup.sh fetched it, the real ISNet network."""
import json
import os

import numpy as np
import pytest

from engine.masks.files import MaskFileMasker
from engine.masks.subject import GROW, SETTLE, SubjectMasker, resolve_boxes, settled
from engine.masks.trust import HOLD, TrustedMasker, judge
from engine.video import FrameRange, open_video
from media import two_subjects, write_video
from test_cli import dynasketch


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two")
    frames, discs, squares = two_subjects()
    return {"video": write_video(str(folder / "two.mp4"), frames), "disc": discs, "square": squares}


DISC_BOX = "20,48,84,84"          # around the disc on frame 0 (centre 60,100, radius 32)
SQUARE_BOX = "196,42,64,64@4"     # around the square on frame 4 (centre 218,80, half side 28)


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def follow(video, boxes, frames, session_of=None):
    clip = open_video(video)
    masker = SubjectMasker(session_of, clip, frames, resolve_boxes(boxes, clip.info.width, clip.info.height, frames))
    return masker, [masker(i, rgb, a) > 0.5 for i, rgb, a in clip.frames(frames)]


def test_without_a_network_the_box_itself_follows_the_subject(two):
    """No weights: the followed box is the mask; optical flow carries it with the disc, and
    never onto the square moving the other way."""
    masker, masks = follow(two["video"], [DISC_BOX], FrameRange(0, 16))
    assert masker.name == "box"
    for t, m in enumerate(masks):
        disc = two["disc"][t]
        assert (m & disc).sum() / disc.sum() >= 0.9, t                  # the disc stays in its box
        assert (m & two["square"][t]).sum() == 0, t
    xs = [np.nonzero(m)[1].mean() for m in masks]
    assert 42 <= xs[-1] - xs[0] <= 48                                   # 15 frames at 3 px


def test_a_box_on_a_later_frame_is_followed_back_to_the_first(two):
    masker, masks = follow(two["video"], [SQUARE_BOX], FrameRange(0, 16))
    for t, m in enumerate(masks):
        square = two["square"][t]
        assert (m & square).sum() / square.sum() >= 0.85, t
        assert (m & two["disc"][t]).sum() == 0, t


def test_the_network_masks_the_boxed_subject_and_not_the_other(two, setup_isnet):
    from engine.masks.isnet import load_session

    for boxes, chosen, other in (([DISC_BOX], "disc", "square"), ([SQUARE_BOX], "square", "disc")):
        masker, masks = follow(two["video"], boxes, FrameRange(0, 16), lambda: load_session(setup_isnet))
        assert masker.name == "isnet-subject"
        scores = [iou(m, two[chosen][t]) for t, m in enumerate(masks)]
        assert np.mean(scores) >= 0.85 and min(scores) >= 0.7, (chosen, scores)
        assert all((m & two[other][t]).sum() == 0 for t, m in enumerate(masks)), chosen


def test_the_followed_box_moves_with_the_mask_but_does_not_widen_with_what_it_takes_in():
    """A mask that takes in background beside the subject (a stripe behind it: bounds three
    times as wide) widens the box by at most 2% a frame, so the crop does not open onto more
    background; a mask that moves takes the box along, a fifth of the way a frame."""
    box = (100.0, 100.0, 200.0, 200.0)
    for _ in range(10):
        box = settled(box, (0, 100, 300, 200))
    assert box[2] - box[0] <= 100 * (1 + GROW) ** 10 + 1e-6
    assert abs((box[0] + box[2]) / 2 - 150) < 1e-6                      # still centred on the subject
    moved = settled((100.0, 100.0, 200.0, 200.0), (150, 100, 250, 200))
    assert moved == pytest.approx((100 + 50 * SETTLE, 100, 200 + 50 * SETTLE, 200))


@pytest.mark.parametrize("box, why", [
    ("10,10,0,20", "has no size"), ("400,10,20,20", "outside the 320x180 frame"),
    ("-50,-50,20,20", "outside"), ("10,10,20,20@12", "frame 12 is not sketched"),
    ("10,10,twenty,20", "give a box as X,Y,W,H")])
def test_a_box_that_cannot_be_used_is_one_line_and_nothing_is_touched(two, tmp_path, box, why):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    result = dynasketch("sketch", two["video"], "--out", out, "--frames", "0:8", f"--subject={box}",
                        "--progress", "none")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and why in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert sorted(os.listdir(out)) == ["mine.txt"]


def test_two_boxes_on_one_frame_and_a_box_with_a_mask_file_are_refused(two, tmp_path):
    result = dynasketch("sketch", two["video"], "--out", tmp_path / "a", "--frames", "0:8", "--subject",
                        "10,10,20,20@2", "--subject", "30,30,20,20@2", "--progress", "none")
    assert result.returncode == 2 and "two boxes on frame 2" in result.stderr
    result = dynasketch("sketch", two["video"], "--out", tmp_path / "b", "--subject", DISC_BOX,
                        "--mask", "none", "--progress", "none")
    assert result.returncode == 2 and "use it with --mask auto or isnet" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_boxes_are_part_of_the_job_and_a_run_without_weights_says_so(two, tmp_path):
    """The boxes are in sketch.json's settings and the resume check: another box is another
    job. Without ISNet the box is the mask, and the run's first line says what to do."""
    out = tmp_path / "out"
    result = dynasketch("sketch", two["video"], "--out", out, "--frames", "0:6", "--subject", DISC_BOX,
                        "--preset", "fast", "--seeds", 1, "--no-preview", "--progress", "json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    warnings = [e for e in events if e["event"] == "warning"]
    assert len(warnings) == 1 and "dynasketch models download isnet-general-use" in warnings[0]["message"]
    assert [e["event"] for e in events].index("warning") < [e["event"] for e in events].index("done")
    sketch = json.loads((out / "sketch.json").read_text())
    assert sketch["settings"]["subject"] == ["20,48,84,84@0"] and sketch["settings"]["backends"]["mask"] == "box"
    pts = np.concatenate([np.array(s["points"]) for f in sketch["frames"] for s in f["strokes"]])
    assert pts[:, 0].max() < 160                             # on the disc's half, not the square's
    same = dynasketch("sketch", two["video"], "--out", out, "--frames", "0:6", "--subject", DISC_BOX,
                      "--preset", "fast", "--seeds", 1, "--no-preview", "--progress", "json")
    assert same.returncode == 0 and "resuming after 6 frames" in same.stdout, same.stderr
    again = dynasketch("sketch", two["video"], "--out", out, "--frames", "0:6", "--subject", "20,48,84,90",
                       "--preset", "fast", "--seeds", 1, "--no-preview", "--progress", "none")
    assert again.returncode == 2 and "other settings" in again.stderr


def test_footage_without_a_mask_says_so_in_one_line_at_the_start(two, tmp_path):
    result = dynasketch("sketch", two["video"], "--out", tmp_path / "out", "--frames", "0:2", "--preset", "fast",
                        "--seeds", 1, "--no-preview", "--progress", "none")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dynasketch: warning: no mask")
    assert "dynasketch models download isnet-general-use" in lines[0] and "--subject" in lines[0]
    quiet = dynasketch("sketch", two["video"], "--out", tmp_path / "none", "--frames", "0:2", "--mask", "none",
                       "--preset", "fast", "--seeds", 1, "--no-preview", "--progress", "none")
    assert quiet.returncode == 0 and quiet.stderr == ""        # asked for no mask: nothing to say


# The trust check.

def test_a_steadily_moving_or_growing_mask_is_trusted():
    yy, xx = np.mgrid[0:120, 0:160]
    for t in range(1, 30):
        before = (xx - 40 - 2 * (t - 1)) ** 2 + (yy - 60) ** 2 < (20 + t - 1) ** 2
        now = (xx - 40 - 2 * t) ** 2 + (yy - 60) ** 2 < (20 + t) ** 2
        assert judge(now, before) is None
    assert judge(np.zeros((120, 160), bool), before) == "empty"
    assert judge(np.roll(before, 80, axis=1), before).startswith("moved")
    small = (xx - 40) ** 2 + (yy - 40) ** 2 < 15 ** 2
    assert judge(small | ((xx > 100) & (yy > 60)), small).startswith("area jumped")
    scattered = np.zeros((120, 160), bool)
    for cx in (20, 60, 100, 140):
        scattered |= (xx - cx) ** 2 + (yy - 60) ** 2 < 10 ** 2
    assert judge(scattered, None).startswith("scattered into 4 pieces")


def test_a_mask_that_jumps_or_empties_is_flagged_and_the_carried_one_held(two, tmp_path):
    """A mask video that on frames 5-6 takes the square instead of the disc, and is empty on
    frame 10: those frames are flagged and get the disc carried on by optical flow."""
    masks = two["disc"].copy()
    masks[5:7] = two["square"][5:7]
    masks[10] = False
    path = write_video(str(tmp_path / "jumps.mask.mp4"), np.repeat(masks[..., None] * np.uint8(255), 3, -1))
    clip = open_video(two["video"])
    frames = FrameRange(0, 16)
    trusted = TrustedMasker(MaskFileMasker(path, clip.info, frames))
    used = [trusted(i, rgb, a) > 0.5 for i, rgb, a in clip.frames(frames)]
    assert sorted(trusted.notes) == [5, 6, 10], trusted.notes
    assert "held the mask carried" in trusted.notes[5] and trusted.notes[10].startswith("empty")
    for t in (5, 6, 10):
        assert iou(used[t], two["disc"][t]) >= 0.8, t
    assert all(iou(used[t], two["disc"][t]) >= 0.9 for t in range(16) if t not in (5, 6, 10))


def test_a_lasting_change_is_taken_after_the_hold(two, tmp_path):
    """The subject really changes (from frame 3 on, the mask is the square): held back for
    HOLD frames, then taken, and said so."""
    frames, discs, squares = two_subjects(t_len=HOLD + 8)
    masks = np.concatenate([discs[:3], squares[3:]])
    video = write_video(str(tmp_path / "long.mp4"), frames)
    path = write_video(str(tmp_path / "long.mask.mp4"), np.repeat(masks[..., None] * np.uint8(255), 3, -1))
    clip = open_video(video)
    trusted = TrustedMasker(MaskFileMasker(path, clip.info, FrameRange(0, HOLD + 8)))
    used = [trusted(i, rgb, a) > 0.5 for i, rgb, a in clip.frames(FrameRange(0, HOLD + 8))]
    assert sorted(trusted.notes) == list(range(3, 3 + HOLD + 1))
    assert "taken after" in trusted.notes[3 + HOLD]
    assert iou(used[-1], squares[-1]) >= 0.95


def test_a_mask_file_empty_on_some_frames_keeps_the_strokes_and_says_so(two, tmp_path):
    masks = two["disc"].copy()
    masks[3:5] = False
    path = write_video(str(tmp_path / "gaps.mask.mp4"), np.repeat(masks[..., None] * np.uint8(255), 3, -1))
    out = tmp_path / "out"
    result = dynasketch("sketch", two["video"], "--out", out, "--mask", path, "--frames", "0:8", "--strokes", 6,
                        "--preset", "fast", "--seeds", 1, "--no-preview", "--progress", "none")
    assert result.returncode == 0, result.stderr
    frames = json.loads((out / "sketch.json").read_text())["frames"]
    assert all(len(f["strokes"]) == 6 for f in frames)
    assert [f["index"] for f in frames if "mask_note" in f] == [3, 4]
    assert frames[3]["mask_note"].startswith("empty")
    assert "frame 3: mask empty" in (out / "dynasketch.log").read_text()
