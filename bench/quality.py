"""Sketch quality: line quality and coherence of temporal DynaSketch against ``--no-temporal``.

    python -m bench.quality [--clips a.mp4,...] [--frames 61] [--preset default]
        [--strokes 16] [--sheets FOLDER] [--masks FOLDER]

For every clip (default: the shared clips in ../shared/clips), with its mask
(``<name>.mask.mp4`` where there is one, else ISNet's masks, made once with the default
masker and kept as ``<masks>/<name>.isnet.mkv``): both modes are sketched from the first
``--frames`` frames and measured (bench/metrics.py): seconds per frame (mask excluded),
aligned ink, crossings per stroke, silhouette recall, length drift (raw and against the
subject's size), flow-warped flicker (also per unit of ink, and the floor: the mask's
outline drawn as ink, as wide as the strokes), control-point jitter, ink on the subject,
and re-seeds per stroke per second. ``--sheets`` writes a contact sheet per clip (frames 0,
1/3, 2/3 and last; source beside sketch). Prints a Markdown table; the figures are
recorded in docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench import metrics
from bench.contact_sheet import contact_sheet
from engine.pipeline import Job, run_sketch
from engine.progress import Progress
from engine.settings import Settings
from engine.video import FrameRange, open_video

CLIPS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "clips")


def mask_for(clip: str, count: int, folder: str) -> str:
    """The clip's own mask video, or ISNet's masks of its first ``count`` frames."""
    own = clip.replace(".mp4", ".mask.mp4")
    if os.path.exists(own):
        return own
    path = os.path.join(folder, os.path.basename(clip).replace(".mp4", f".isnet-{count}.mkv"))
    if not os.path.exists(path):
        from bench.masks import write_mask_video
        from engine.masks.choose import require_isnet
        from engine.masks.isnet import ISNetMasker

        source = open_video(clip)
        frames = FrameRange(0, count)
        with tempfile.TemporaryDirectory() as cache:
            masker = ISNetMasker(require_isnet("isnet"), source, frames, "cpu", cache)
            write_mask_video(path, [masker(i, rgb, a) > 0.5 for i, rgb, a in source.frames(frames)])
    return path


def measure(clip: str, mask: str, out: str, args, temporal: bool) -> dict:
    settings = Settings.from_preset(args.preset, mask=mask, temporal=temporal, strokes=args.strokes)
    count = min(args.frames, open_video(clip).info.frame_count)
    start = time.perf_counter()
    summary = run_sketch(Job(clip, out, settings, f"0:{count}", preview=False), Progress())
    seconds = time.perf_counter() - start
    sketch = metrics.load(os.path.join(out, "sketch.json"))
    n = len(sketch["frames"])
    row = {"mode": "temporal" if temporal else "--no-temporal", "frames": n, "s/frame": seconds / n,
           **metrics.line_quality(sketch, mask), "flicker": metrics.flicker(sketch),
           "flicker/ink": metrics.flicker(sketch) / metrics.render(sketch, 224).mean(),
           "jitter": metrics.jitter(sketch), "ink on subject": metrics.ink_on_subject(sketch, mask),
           "re-seeds/stroke/s": summary["reseeds"] / args.strokes / (n / sketch["fps"])}
    if temporal:                 # the measure's floor: the mask's outline drawn as ink
        outline = metrics.outline_ink(sketch, mask)
        row["outline flicker"] = metrics.flicker(sketch, ink=outline)
        row["outline flicker/ink"] = row["outline flicker"] / outline.mean()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", default="")
    ap.add_argument("--frames", type=int, default=61)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--strokes", type=int, default=16)
    ap.add_argument("--sheets", default="")
    ap.add_argument("--masks", default=os.path.join(tempfile.gettempdir(), "dynasketch-bench-masks"))
    args = ap.parse_args()
    clips = args.clips.split(",") if args.clips else sorted(
        os.path.join(CLIPS, f) for f in os.listdir(CLIPS) if f.endswith(".mp4") and ".mask." not in f)
    os.makedirs(args.masks, exist_ok=True)
    print(f"preset {args.preset}, {args.strokes} strokes, first {args.frames} frames\n")
    print("| clip | mode | s/frame | aligned ink | crossings/stroke | silhouette recall | length drift "
          "(raw / subject) | flicker | flicker per ink | jitter (px) | ink on subject | re-seeds/stroke/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for clip in clips:
        name = os.path.basename(clip)
        mask = mask_for(clip, min(args.frames, open_video(clip).info.frame_count), args.masks)
        with tempfile.TemporaryDirectory() as tmp:
            rows = [measure(clip, mask, os.path.join(tmp, str(t)), args, t) for t in (True, False)]
            if args.sheets:
                os.makedirs(args.sheets, exist_ok=True)
                contact_sheet([os.path.join(tmp, "True", "sketch.json")]).save(
                    os.path.join(args.sheets, name.replace(".mp4", f"-{args.strokes}.png")))
        for r in rows:
            print(f"| {name} | {r['mode']} | {r['s/frame']:.2f} | {r['aligned_ink']:.2f} | "
                  f"{r['crossings_per_stroke']:.2f} | {r['silhouette_recall']:.2f} | "
                  f"{r['length_drift']:.2f} / {r['length_drift_subject']:.2f} | {r['flicker']:.4f} | "
                  f"{r['flicker/ink']:.2f} | "
                  f"{r['jitter']:.2f} | {r['ink on subject']:.1%} | {r['re-seeds/stroke/s']:.2f} |")
        t, i = rows
        print(f"| {name} | mask outline (floor) | | | | | | {t['outline flicker']:.4f} | "
              f"{t['outline flicker/ink']:.2f} | | | |")
        print(f"| {name} | temporal / independent | | | | | | {t['flicker'] / i['flicker']:.2f} | | "
              f"{t['jitter'] / i['jitter']:.2f} | | |", flush=True)


if __name__ == "__main__":
    main()
