"""A busy-background test clip: a subject with an exact mask pasted over a loud moving pattern.

    .venv/bin/python -m bench.busy_background OUT_FOLDER [--clip soapbox.mp4 --mask soapbox.mask.mp4]
        [--size 960x540] [--frames N] [--seed 0] [--check] [--check-every 4] [--sheet]

Writes into OUT_FOLDER (never the repository; the subject is third-party footage):

    busy.mp4        the clip (H.264, CRF 12): the subject clip's masked pixels pasted, centred,
                    over the pattern
    busy.mask.mkv   its exact mask: the pasted mask (white = subject), lossless (FFV1, grey),
                    usable as ``--mask``
    busy.json       size, fps, frame count, the subject's box on every frame, the box to give
                    as ``--subject X,Y,W,H@0`` (the frame-0 box with a margin), the seed, and
                    with ``--check`` full-frame ISNet's IoU against the exact mask
    busy_sheet.png  with ``--sheet``: six frames, the exact mask's outline in green and (with
                    ``--check``) ISNet's in red

The pattern is meant to out-shout the subject for a salient-object network: scrolling black and
white stripes, drifting checkerboard patches, thirty saturated shapes, and decoys larger and
brighter than the subject (a red ball, a yellow face, a white "SALE" sign, a white car-like
blob, an orange disc), all moving, some passing behind the subject. The subject is the masked
pixels of the subject clip only, pasted without feathering, so the mask is exact.

``--check`` runs full-frame ISNet (1024 px, the engine's ``isnet`` weights, threshold 0.5) on
every ``--check-every``-th frame and reports the IoU against the exact mask and how much of the
network's mask is background: the clip is only useful if the network fails on it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

CLIPS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "clips")


def read_frames(path: str, count: int | None = None, fmt: str = "rgb24") -> list[np.ndarray]:
    import av

    out = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format=fmt))
            if count is not None and len(out) >= count:
                break
    return out


def clip_fps(path: str) -> float:
    import av

    with av.open(path) as container:
        return float(container.streams.video[0].average_rate)


# --- the pattern -------------------------------------------------------------------------------

PALETTE = [(255, 0, 0), (0, 200, 0), (0, 80, 255), (255, 230, 0), (255, 0, 200), (0, 230, 230),
           (255, 120, 0), (255, 255, 255), (0, 0, 0), (140, 0, 255)]


class Pattern:
    """A deterministic moving pattern of size ``(h, w)``; ``frame(t)`` is RGB uint8."""

    def __init__(self, w: int, h: int, seed: int = 0):
        self.w, self.h = w, h
        rng = np.random.default_rng(seed)
        self.stripe_angle = rng.uniform(0.3, 1.2)
        self.patches = [dict(x=rng.uniform(0, w), y=rng.uniform(0, h), vx=rng.uniform(-4, 4),
                             vy=rng.uniform(-3, 3), pw=int(rng.uniform(90, 200)), ph=int(rng.uniform(70, 160)),
                             cell=int(rng.choice([10, 14, 20])), a=PALETTE[rng.integers(0, 7)],
                             b=PALETTE[rng.integers(7, 10)]) for _ in range(5)]
        kinds = ["circle", "rect", "triangle"]
        self.shapes = [dict(kind=kinds[rng.integers(0, 3)], x=rng.uniform(0, w), y=rng.uniform(0, h),
                            vx=rng.uniform(-6, 6), vy=rng.uniform(-5, 5), r=rng.uniform(12, 45),
                            spin=rng.uniform(-0.1, 0.1), colour=PALETTE[rng.integers(0, len(PALETTE))])
                       for _ in range(30)]
        # decoys: big, bright, object-like; they orbit so they cross the middle, behind the subject
        self.decoys = [dict(kind=k, cx=w * cx, cy=h * cy, ax=w * ax, ay=h * ay, speed=sp, phase=ph)
                       for k, cx, cy, ax, ay, sp, ph in [
                           ("ball", 0.22, 0.35, 0.12, 0.15, 0.05, 0.0),
                           ("face", 0.80, 0.30, 0.10, 0.12, 0.04, 1.0),
                           ("sign", 0.50, 0.12, 0.28, 0.04, 0.03, 2.0),
                           ("car", 0.25, 0.80, 0.15, 0.06, 0.045, 3.0),
                           ("disc", 0.78, 0.78, 0.10, 0.10, 0.06, 4.0)]]

    def _stripes(self, t: int) -> np.ndarray:
        yy, xx = np.mgrid[0:self.h, 0:self.w].astype(np.float32)
        u = xx * np.cos(self.stripe_angle) + yy * np.sin(self.stripe_angle) + 3.0 * t
        on = (u // 24).astype(np.int64) % 2 == 0
        img = np.where(on[..., None], np.uint8(235), np.uint8(20)).astype(np.uint8)
        return np.repeat(img, 3, axis=2)

    def frame(self, t: int) -> np.ndarray:
        w, h = self.w, self.h
        img = np.ascontiguousarray(self._stripes(t))
        for p in self.patches:
            x = int((p["x"] + p["vx"] * t) % (w + p["pw"]) - p["pw"])
            y = int((p["y"] + p["vy"] * t) % (h + p["ph"]) - p["ph"])
            yy, xx = np.mgrid[0:p["ph"], 0:p["pw"]]
            checks = ((yy // p["cell"] + xx // p["cell"]) % 2 == 0)[..., None]
            tile = np.where(checks, np.array(p["a"], np.uint8), np.array(p["b"], np.uint8))
            x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + p["pw"]), min(h, y + p["ph"])
            if x1 > x0 and y1 > y0:
                img[y0:y1, x0:x1] = tile[y0 - y:y1 - y, x0 - x:x1 - x]
        for s in self.shapes:
            cx = (s["x"] + s["vx"] * t) % w
            cy = (s["y"] + s["vy"] * t) % h
            r, a = s["r"], s["spin"] * t
            colour = tuple(int(c) for c in s["colour"])
            if s["kind"] == "circle":
                cv2.circle(img, (int(cx), int(cy)), int(r), colour, -1, cv2.LINE_AA)
            else:
                n = 4 if s["kind"] == "rect" else 3
                pts = np.array([(cx + r * np.cos(a + 2 * np.pi * k / n), cy + r * np.sin(a + 2 * np.pi * k / n))
                                for k in range(n)], np.int32)
                cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
        for d in self.decoys:
            ang = d["phase"] + d["speed"] * t
            self._decoy(img, d["kind"], int(d["cx"] + d["ax"] * np.cos(ang)), int(d["cy"] + d["ay"] * np.sin(ang)), t)
        return img

    def _decoy(self, img: np.ndarray, kind: str, x: int, y: int, t: int) -> None:
        s = min(self.w, self.h) / 540.0
        if kind == "ball":
            r = int(80 * s)
            cv2.circle(img, (x, y), r + 6, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(img, (x, y), r, (230, 20, 20), -1, cv2.LINE_AA)
            cv2.circle(img, (x - r // 3, y - r // 3), r // 4, (255, 220, 220), -1, cv2.LINE_AA)
        elif kind == "face":
            ax, ay = int(85 * s), int(105 * s)
            cv2.ellipse(img, (x, y), (ax + 6, ay + 6), 0, 0, 360, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.ellipse(img, (x, y), (ax, ay), 0, 0, 360, (255, 215, 60), -1, cv2.LINE_AA)
            for ex in (-1, 1):
                cv2.circle(img, (x + ex * ax // 2, y - ay // 4), int(16 * s), (255, 255, 255), -1, cv2.LINE_AA)
                cv2.circle(img, (x + ex * ax // 2, y - ay // 4), int(8 * s), (0, 0, 0), -1, cv2.LINE_AA)
            cv2.ellipse(img, (x, y + ay // 3), (ax // 2, ay // 5), 0, 0, 180, (120, 0, 0), int(8 * s), cv2.LINE_AA)
        elif kind == "sign":
            wdt, hgt = int(260 * s), int(90 * s)
            cv2.rectangle(img, (x - wdt // 2 - 6, y - hgt // 2 - 6), (x + wdt // 2 + 6, y + hgt // 2 + 6),
                          (0, 0, 0), -1)
            cv2.rectangle(img, (x - wdt // 2, y - hgt // 2), (x + wdt // 2, y + hgt // 2), (255, 255, 255), -1)
            cv2.putText(img, "SALE", (x - int(115 * s), y + int(30 * s)), cv2.FONT_HERSHEY_DUPLEX, 2.6 * s,
                        (220, 0, 0), max(2, int(7 * s)), cv2.LINE_AA)
        elif kind == "car":
            wdt, hgt = int(230 * s), int(70 * s)
            cv2.rectangle(img, (x - wdt // 2, y - hgt // 2), (x + wdt // 2, y + hgt // 2), (250, 250, 250), -1)
            cv2.rectangle(img, (x - wdt // 4, y - hgt // 2 - int(45 * s)), (x + wdt // 4, y - hgt // 2),
                          (250, 250, 250), -1)
            cv2.rectangle(img, (x - wdt // 4 + 8, y - hgt // 2 - int(38 * s)), (x + wdt // 4 - 8, y - hgt // 2 - 4),
                          (40, 120, 220), -1)
            for wx in (-wdt // 3, wdt // 3):
                cv2.circle(img, (x + wx, y + hgt // 2), int(28 * s), (10, 10, 10), -1, cv2.LINE_AA)
                cv2.circle(img, (x + wx, y + hgt // 2), int(12 * s), (180, 180, 180), -1, cv2.LINE_AA)
        elif kind == "disc":
            r = int(70 * s)
            cv2.circle(img, (x, y), r, (255, 140, 0), -1, cv2.LINE_AA)
            cv2.circle(img, (x, y), r // 2, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(img, (x, y), r // 4, (255, 140, 0), -1, cv2.LINE_AA)


# --- composing ---------------------------------------------------------------------------------

def box_of(mask: np.ndarray) -> list[int] | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def loose_box(box: list[int], w: int, h: int, margin: float = 0.08, least: int = 8) -> list[int]:
    """``box`` grown by ``margin`` of its size (at least ``least`` px) a side, kept in the frame."""
    x, y, bw, bh = box
    mx, my = max(least, round(bw * margin)), max(least, round(bh * margin))
    x0, y0, x1, y1 = max(0, x - mx), max(0, y - my), min(w, x + bw + mx), min(h, y + bh + my)
    return [x0, y0, x1 - x0, y1 - y0]


def compose(clip: str, mask: str, size: tuple[int, int], frames: int | None, seed: int):
    """Frames, masks (bool) and the subject's offset on the plate."""
    rgbs = read_frames(clip, frames)
    masks = [m.mean(-1) >= 128 for m in read_frames(mask, len(rgbs))]
    if len(masks) < len(rgbs):
        raise SystemExit(f"{mask} has {len(masks)} frames, {clip} {len(rgbs)}")
    w, h = size
    sh, sw = rgbs[0].shape[:2]
    if sw > w or sh > h:
        raise SystemExit(f"the subject clip ({sw}x{sh}) is larger than --size {w}x{h}")
    ox, oy = (w - sw) // 2, (h - sh) // 2
    pattern = Pattern(w, h, seed)
    out_frames, out_masks = [], []
    for t, (rgb, m) in enumerate(zip(rgbs, masks)):
        plate = pattern.frame(t)
        full = np.zeros((h, w), bool)
        full[oy:oy + sh, ox:ox + sw] = m
        region = plate[oy:oy + sh, ox:ox + sw]
        region[m] = rgb[m]
        out_frames.append(plate)
        out_masks.append(full)
    return out_frames, out_masks


def write_video(path: str, frames: list[np.ndarray], fps: float) -> None:
    import av
    from fractions import Fraction

    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "12", "preset": "medium"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


def write_mask_video(path: str, masks: list[np.ndarray], fps: float) -> None:
    import av
    from fractions import Fraction

    with av.open(path, "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = masks[0].shape[1], masks[0].shape[0], "gray"
        for m in masks:
            out.mux(stream.encode(av.VideoFrame.from_ndarray((m * 255).astype(np.uint8), format="gray")))
        out.mux(stream.encode())


# --- checking ----------------------------------------------------------------------------------

def isnet_session(weights: str | None):
    try:
        from engine.masks.isnet import full_size_probability, load_session
    except ImportError:
        from engine.neural.isnet_masker import full_size_probability, load_session
    if weights is None:
        from engine.masks.choose import require_isnet
        weights = require_isnet("isnet")
    return load_session(weights), full_size_probability, os.path.basename(weights)


def check(frames: list[np.ndarray], masks: list[np.ndarray], every: int, weights: str | None) -> dict:
    session, probability, name = isnet_session(weights)
    rows, network = [], {}
    for t in range(0, len(frames), every):
        net = probability(session, frames[t]) > 0.5
        truth = masks[t]
        union = (net | truth).sum()
        rows.append(dict(frame=t, iou=float((net & truth).sum() / union) if union else 1.0,
                         background_share=float((net & ~truth).sum() / max(1, net.sum())),
                         subject_found=float((net & truth).sum() / max(1, truth.sum()))))
        network[t] = net
        print(json.dumps(rows[-1]), flush=True)
    ious = [r["iou"] for r in rows]
    summary = dict(weights=name, size=1024, every=every, frames=len(rows), iou_mean=float(np.mean(ious)),
                   iou_min=float(np.min(ious)), iou_max=float(np.max(ious)),
                   frames_iou_below_0_8=int(sum(i < 0.8 for i in ious)),
                   background_share_mean=float(np.mean([r["background_share"] for r in rows])),
                   subject_found_mean=float(np.mean([r["subject_found"] for r in rows])), per_frame=rows)
    return summary, network


def sheet(path: str, frames: list[np.ndarray], masks: list[np.ndarray], network: dict, height: int = 270) -> None:
    picks = sorted(network) if network else list(range(len(frames)))
    picks = [picks[round(k * (len(picks) - 1) / 5)] for k in range(6)]
    tiles = []
    for t in picks:
        im = cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR)
        for m, colour in ((masks[t], (0, 255, 0)), (network.get(t), (0, 0, 255))):
            if m is None:
                continue
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(im, contours, -1, (0, 0, 0), 5)
            cv2.drawContours(im, contours, -1, colour, 2)
        cv2.putText(im, f"f{t}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 6)
        cv2.putText(im, f"f{t}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        scale = height / im.shape[0]
        tiles.append(cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    rows = [np.hstack(tiles[k:k + 2]) for k in range(0, 6, 2)]
    cv2.imwrite(path, np.vstack(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--clip", default=os.path.join(CLIPS, "soapbox.mp4"))
    ap.add_argument("--mask", default=None, help="the clip's mask video (default: <clip>.mask.mp4)")
    ap.add_argument("--size", default="960x540")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="run full-frame ISNet and report its IoU")
    ap.add_argument("--check-every", type=int, default=4)
    ap.add_argument("--weights", default=None, help="an ISNet .onnx file (default: the engine's isnet)")
    ap.add_argument("--sheet", action="store_true")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    if out == repo or out.startswith(repo + os.sep):
        raise SystemExit("the output holds third-party footage: write it outside the repository")
    os.makedirs(out, exist_ok=True)
    mask = args.mask or args.clip.replace(".mp4", ".mask.mp4")
    w, h = map(int, args.size.lower().split("x"))
    fps = clip_fps(args.clip)
    frames, masks = compose(args.clip, mask, (w, h), args.frames, args.seed)
    write_video(os.path.join(out, "busy.mp4"), frames, fps)
    write_mask_video(os.path.join(out, "busy.mask.mkv"), masks, fps)
    boxes = [box_of(m) for m in masks]
    info = dict(clip="busy.mp4", mask="busy.mask.mkv", width=w, height=h, fps=fps, frame_count=len(frames),
                subject=os.path.basename(args.clip), subject_mask=os.path.basename(mask), seed=args.seed,
                subject_box_frame0=loose_box(boxes[0], w, h), boxes=boxes)
    x, y, bw, bh = info["subject_box_frame0"]
    info["subject_arg"] = f"{x},{y},{bw},{bh}@0"
    network = {}
    if args.check:
        info["isnet_full_frame"], network = check(frames, masks, args.check_every, args.weights)
        s = info["isnet_full_frame"]
        print(f"full-frame ISNet vs the exact mask: IoU mean {s['iou_mean']:.3f} (min {s['iou_min']:.3f}, "
              f"max {s['iou_max']:.3f}); {s['frames_iou_below_0_8']}/{s['frames']} frames below 0.8; "
              f"background {s['background_share_mean']:.0%} of its mask; subject found {s['subject_found_mean']:.0%}")
    with open(os.path.join(out, "busy.json"), "w") as f:
        json.dump(info, f, indent=1)
    if args.sheet:
        sheet(os.path.join(out, "busy_sheet.png"), frames, masks, network)
    print(f"{out}: {len(frames)} frames {w}x{h} at {fps:.3f} fps; --subject {info['subject_arg']}")


if __name__ == "__main__":
    main()
