"""Reference masks to measure masking against: checked by eye, stored compactly, no media.

    from bench import references
    ref = references.load("dog")            # dog.json beside this file
    ref["subjects"]["woman"]["masks"]       # (frames, H, W) bool, full size
    ref["subjects"]["woman"]["boxes"]       # [x, y, w, h] a frame, source pixels (None: empty)
    ref["subjects"]["woman"]["subject_arg"] # "X,Y,W,H@0": a loose box on frame 0, for --subject

The clips are in ../shared/clips (third-party footage, never in the repository); each JSON
file says how its masks were made ("method", "hand_edits"), which frames are approximate, and
how well the stored half-size masks reproduce the full-size ones ("storage_iou_min").

* dog.json: dog.mp4, frames 0-47: "woman" and "dog" (with its leash).
* juggle.json: juggle.mp4, frames 0-47: "man" (with the ball).
* coffee.json: coffee.mp4, frames 0-47: "mug" (the blue mug alone).

``cases(busy_folder)`` lists the clips with a subject box and a mask to score against (these,
soapbox.mp4 with its own ground truth, and the clip bench/busy_background.py wrote, when its
folder is given); ``mask_video(case, folder, frames)`` writes or finds that mask as a video the
engine's ``--mask`` reader takes.
"""
from __future__ import annotations

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CLIPS = os.path.join(HERE, "..", "..", "..", "shared", "clips")
NAMES = ("dog", "juggle", "coffee")


def decode(runs: list[int], width: int, height: int) -> np.ndarray:
    """Run lengths (alternating 0 and 1, starting with 0, row-major) as a ``(height, width)`` bool mask."""
    values = np.zeros(len(runs), bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    if flat.size != width * height:
        raise ValueError(f"the runs cover {flat.size} pixels, not {width} x {height}")
    return flat.reshape(height, width)


def encode(mask: np.ndarray) -> list[int]:
    """The inverse of ``decode``."""
    flat = np.asarray(mask, bool).ravel().astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def upsample(small: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour upsampling of a stored mask to the clip's size."""
    h, w = small.shape
    rows = np.minimum((np.arange(height) * h) // height, h - 1)
    cols = np.minimum((np.arange(width) * w) // width, w - 1)
    return small[rows[:, None], cols[None, :]]


def read(name: str) -> dict:
    """The JSON file as stored (masks still run-length encoded)."""
    path = name if name.endswith(".json") else os.path.join(HERE, f"{name}.json")
    with open(path) as f:
        return json.load(f)


def load(name: str) -> dict:
    """``name``'s reference: the JSON's fields, ``clip_path`` and ``indices`` (the source frames
    covered), and per subject ``masks``, ``(frames, height, width)`` bool at full size."""
    data = read(name)
    w, h = data["width"], data["height"]
    mw, mh = data["mask_width"], data["mask_height"]
    data["clip_path"] = os.path.normpath(os.path.join(CLIPS, data["clip"]))
    data["indices"] = list(range(*data["frames"]))
    for subject in data["subjects"].values():
        subject["masks"] = np.stack([upsample(decode(r, mw, mh), w, h) for r in subject.pop("rle")])
        subject["boxes"] = [tuple(b) if b else None for b in subject["boxes"]]
        subject["subject_box_frame0"] = tuple(subject["subject_box_frame0"])
    return data


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _loose_box(mask: np.ndarray, margin: float = 0.08, least: int = 8) -> str:
    ys, xs = np.nonzero(mask)
    x, y, bw, bh = xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    mx, my = max(least, round(bw * margin)), max(least, round(bh * margin))
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(mask.shape[1], x + bw + mx), min(mask.shape[0], y + bh + my)
    return f"{x0},{y0},{x1 - x0},{y1 - y0}@0"


def cases(busy_folder: str | None = None) -> list[dict]:
    """The clips to score a subject's mask on: ``label``, ``clip`` (path), ``box`` (for
    ``--subject``), ``frames`` (how many the reference covers) and where the mask comes from
    (``reference`` and ``subject``, or ``mask`` for a clip with its own mask video)."""
    out = []
    for name in NAMES:
        data = read(name)
        for subject, entry in data["subjects"].items():
            out.append(dict(label=f"{name} {subject}" if len(data["subjects"]) > 1 else name,
                            clip=os.path.normpath(os.path.join(CLIPS, data["clip"])), box=entry["subject_arg"],
                            frames=data["frames"][1], reference=name, subject=subject))
    soapbox, truth = os.path.join(CLIPS, "soapbox.mp4"), os.path.join(CLIPS, "soapbox.mask.mp4")
    if os.path.exists(truth):
        from engine.video import FrameRange, open_video

        clip = open_video(truth)
        _, first, _ = next(iter(clip.frames(FrameRange(0, 1))))
        out.append(dict(label="soapbox", clip=os.path.normpath(soapbox), box=_loose_box(first.mean(-1) >= 128),
                        frames=clip.info.frame_count, mask=os.path.normpath(truth)))
    if busy_folder:
        with open(os.path.join(busy_folder, "busy.json")) as f:
            busy = json.load(f)
        out.append(dict(label="busy", clip=os.path.join(busy_folder, busy["clip"]), box=busy["subject_arg"],
                        frames=busy["frame_count"], mask=os.path.join(busy_folder, busy["mask"])))
    return out


def mask_video(case: dict, folder: str, frames: int) -> str:
    """A mask video (white = subject) for the case's first ``frames`` frames: its own mask
    file, or the reference written losslessly (FFV1, grey) into ``folder``."""
    if "mask" in case:
        return case["mask"]
    if frames > case["frames"]:
        raise ValueError(f"{case['label']}: the reference covers {case['frames']} frames, not {frames}")
    from fractions import Fraction

    import av

    ref = load(case["reference"])
    masks = ref["subjects"][case["subject"]]["masks"][:frames]
    path = os.path.join(folder, f"{case['label'].replace(' ', '_')}.mask.mkv")
    with av.open(path, "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(ref["fps"]).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = masks.shape[2], masks.shape[1], "gray"
        for m in masks:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(m.astype(np.uint8) * 255, format="gray")))
        out.mux(stream.encode())
    return path
