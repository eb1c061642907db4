"""The subject, chosen and masked: ink on the subject with `--mask auto` and with a box
(`--subject`), the masker's speed, and how often the trust check fires (figures in
docs/BENCHMARKS.md, "Subjects").

    .venv/bin/python -m bench.subjects [--frames 24] [--only speed|ink|trust] [--sheets FOLDER]
        [--busy FOLDER]

* speed: seconds per frame of the subject follower (ISNet on a crop around the box, flow, the
  trust check) against today's ISNet masker (the whole frame at 1024, every 2nd frame), on
  the 1080p clip (bmx-bumps) and a 720p one (dog), in one run (this machine is shared: the
  ratio is the figure to compare).
* ink: the share of the ink inside a reference mask (``bench.references``: the clip's own
  ground truth, or masks checked by eye), for ``--mask auto`` and for a box on the subject
  (dog: the woman and the dog in turn; the busy-background clip that bench/busy_background.py
  makes, when ``--busy`` names its folder).
* trust: frames the trust check flagged with ``--mask auto`` on every shared clip.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from bench import metrics
from engine.pipeline import Job, run_sketch
from engine.progress import Progress
from engine.settings import Settings
from engine.video import FrameRange, open_video

CLIPS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "clips")


def masker_speed(clip: str, box: str, frames: int) -> dict:
    """Seconds per frame of the follower and of the whole-frame ISNet masker (first frame,
    which loads the network, not counted)."""
    from engine.masks.choose import build_masker, require_isnet
    from engine.masks.isnet import ISNetMasker
    from engine.masks.subject import resolve_boxes
    from engine.masks.trust import TrustedMasker

    source = open_video(clip)
    frange = FrameRange(0, frames)
    out = {}
    with tempfile.TemporaryDirectory() as cache:          # a fresh cache: the network really runs
        for name in ("isnet", "subject"):
            if name == "isnet":
                masker = TrustedMasker(ISNetMasker(require_isnet("isnet"), source, frange, "cpu", cache))
            else:
                boxes = resolve_boxes([box], source.info.width, source.info.height, frange)
                masker = build_masker("isnet", source, frange, "cpu", subject=boxes)
            times = []
            for i, rgb, a in source.frames(frange):
                start = time.perf_counter()
                masker(i, rgb, a)
                times.append(time.perf_counter() - start)
            out[name] = round(float(np.mean(times[1:])), 3)
    out["ratio"] = round(out["subject"] / out["isnet"], 2)
    return out


def sketch_ink(clip: str, reference: str, frames: int, subject: list[str] | None, out: str) -> dict:
    settings = Settings.from_preset("default", subject=subject or [])
    start = time.perf_counter()
    run_sketch(Job(clip, out, settings, f"0:{frames}", preview=False, overwrite=True), Progress())
    seconds = (time.perf_counter() - start) / frames
    sketch = metrics.load(os.path.join(out, "sketch.json"))
    return {"ink": metrics.ink_on_subject(sketch, reference), "s_per_frame": seconds,
            "flags": sum("mask_note" in f for f in sketch["frames"]), "mask": sketch["settings"]["backends"]["mask"]}


def overlay_sheet(paths: list[str], labels: list[str], out: str, rows: int = 3, width: int = 400,
                  source: bool = True) -> str:
    """Each sketch's strokes drawn in red over its source frame (dimmed; on white without
    ``source``: third-party footage stays out of the repository's docs), one column per
    sketch, ``rows`` frames spread over the clip: which subject each one drew."""
    from PIL import Image, ImageDraw

    from bench.contact_sheet import chosen_rows

    sketches = [metrics.load(p) for p in paths]
    first = sketches[0]
    scale = width / first["width"]
    height = round(first["height"] * scale)
    picked = chosen_rows(len(first["frames"]), rows)
    frames = {}
    for t, (_, rgb, _) in enumerate(metrics.sketch_source(first).frames(FrameRange(*first["source"]["frames"]))):
        if t in picked:
            shown = (rgb * 0.55 + 110).astype(np.uint8) if source else np.full_like(rgb, 255)
            frames[t] = Image.fromarray(shown).resize((width, height), Image.LANCZOS)
        if t >= picked[-1]:
            break
    sheet = Image.new("RGB", (len(sketches) * (width + 4) - 4, 18 + len(picked) * (height + 4) - 4), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (sketch, label) in enumerate(zip(sketches, labels)):
        draw.text((c * (width + 4) + 4, 2), label, fill="black")
        lines = metrics.polylines(sketch, scale)
        for r, t in enumerate(picked):
            cell = frames[t].copy()
            pen = ImageDraw.Draw(cell)
            for stroke in lines[t]:
                pen.line([tuple(p) for p in stroke], fill=(220, 0, 0), width=2)
            sheet.paste(cell, (c * (width + 4), 18 + r * (height + 4)))
            draw.rectangle([c * (width + 4), 18 + r * (height + 4), c * (width + 4) + width - 1,
                            18 + r * (height + 4) + height - 1], outline=(160, 160, 160))
    sheet.save(out)
    return out


def trust_counts(frames: int) -> dict:
    """Frames flagged by the trust check with whole-frame ISNet, per shared clip."""
    from engine.masks.choose import build_masker

    counts = {}
    for name in sorted(os.listdir(CLIPS)):
        if not name.endswith(".mp4") or name.endswith(".mask.mp4"):
            continue
        source = open_video(os.path.join(CLIPS, name))
        frange = FrameRange(0, min(frames, source.info.frame_count))
        masker = build_masker("isnet", source, frange, "cpu")
        for i, rgb, a in source.frames(frange):
            masker(i, rgb, a)
        counts[name] = {"frames": len(frange), "flagged": sorted(masker.notes),
                        "why": sorted({n.split(";")[0].split(" (")[0].rstrip("0123456789.x ") for n in masker.notes.values()})}
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--only", default="speed,ink,trust")
    parser.add_argument("--busy", default=None, help="the folder bench/busy_background.py wrote")
    parser.add_argument("--cases", default=None, help="only these cases (labels, comma-separated)")
    parser.add_argument("--tag", default="", help="added to the busy case's label (its seed)")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "dynasketch-subjects"))
    parser.add_argument("--sheets", default=None, help="write auto-against-box contact sheets here")
    args = parser.parse_args()
    report = {}
    if "speed" in args.only:
        report["speed"] = {name: masker_speed(os.path.join(CLIPS, name), box, args.frames)
                           for name, box in (("bmx-bumps.mp4", "1140,360,520,550"), ("dog.mp4", "440,370,270,230"))}
        print(json.dumps(report["speed"]), flush=True)
    if "ink" in args.only:
        from bench import references

        report["ink"] = {}
        for case in references.cases(args.busy):
            if case["label"] == "busy" and args.tag:
                case["label"] = f"busy {args.tag}"
            if args.cases and case["label"] not in args.cases.split(","):
                continue
            with tempfile.TemporaryDirectory() as folder:
                mask = references.mask_video(case, folder, args.frames)
                for label, subject in (("auto", None), ("box", [case["box"]])):
                    key = f"{case['label']} {label}"
                    report["ink"][key] = sketch_ink(case["clip"], mask, args.frames, subject,
                                                    os.path.join(args.out, key.replace(" ", "_")))
                    print(key, json.dumps(report["ink"][key]), flush=True)
                if args.sheets:
                    os.makedirs(args.sheets, exist_ok=True)
                    runs = [os.path.join(args.out, f"{case['label']} {m}".replace(" ", "_"), "sketch.json")
                            for m in ("auto", "box")]
                    for source in (True, False):       # with the footage (to look at), and without (docs)
                        name = f"subject-{case['label'].replace(' ', '-')}{'' if source else '-sketch'}.png"
                        overlay_sheet(runs, ["--mask auto", f"--subject {case['box']}"],
                                      os.path.join(args.sheets, name), source=source)
    if "trust" in args.only:
        report["trust"] = trust_counts(args.frames)
        print(json.dumps(report["trust"]), flush=True)


if __name__ == "__main__":
    main()
