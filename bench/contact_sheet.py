"""Contact sheets: source frames beside their sketches (docs/BENCHMARKS.md shows them).

    python -m bench.contact_sheet OUT.png SKETCH.json [SKETCH2.json ...] [--frames 4] [--height 200]
        [--no-source]

One row per chosen frame (the first, 1/3, 2/3 and the last of the sketch by default):
the source frame, then each sketch's strokes drawn black on white, in the order given
(e.g. before and after a change), all cropped to the square around the ink of every sketch
on that frame so a small subject is seen. Strokes are drawn with Pillow. ``--no-source``
leaves the source out (the sheets in docs/: the shared clips are not the project's media).
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from bench.metrics import load, polylines, sketch_source
from engine.video import FrameRange


def chosen_rows(count: int, rows: int) -> list[int]:
    return sorted({round(k * (count - 1) / max(1, rows - 1)) for k in range(rows)})


def drawing(strokes: list[np.ndarray], size: tuple[int, int], width: float) -> Image.Image:
    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    for s in strokes:
        pen.line([tuple(p) for p in s], fill="black", width=max(1, round(width)), joint="curve")
    return image


def contact_sheet(paths: list[str], rows: int = 4, height: int = 200, source: bool = True) -> Image.Image:
    sketches = [load(p) for p in paths]
    first = sketches[0]
    scale = height / first["height"]
    size = (max(1, round(first["width"] * scale)), height)
    frames = FrameRange(*first["source"]["frames"])
    picked = chosen_rows(len(first["frames"]), rows)
    sources = {}
    for t, (_, rgb, _) in enumerate(sketch_source(first).frames(frames)):
        if t in picked:
            sources[t] = Image.fromarray(rgb).resize(size, Image.LANCZOS)
        if t >= picked[-1]:
            break
    drawn = [polylines(sk, scale) for sk in sketches]
    # every row shows the square around the ink of all the sketches on that frame
    cell, first_column = height, int(source)
    columns = first_column + len(sketches)
    sheet = Image.new("RGB", (cell * columns + 4 * (columns - 1), cell * len(picked) + 4 * (len(picked) - 1)), "grey")
    for r, t in enumerate(picked):
        pts = np.concatenate([np.concatenate(lines[t]) for lines in drawn])
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        side = max(x1 - x0, y1 - y0) * 1.15 + 8
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        zoom = cell / side
        y = r * (cell + 4)
        if source:
            sheet.paste(sources[t].crop(tuple(round(v) for v in box)).resize((cell, cell), Image.LANCZOS), (0, y))
        for c, (sk, lines) in enumerate(zip(sketches, drawn)):
            width = np.mean([s["width"] for s in sk["frames"][t]["strokes"]]) * scale * zoom
            moved = [(s - np.array(box[:2])) * zoom for s in lines[t]]
            sheet.paste(drawing(moved, (cell, cell), max(1.5, width)), ((c + first_column) * (cell + 4), y))
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("sketches", nargs="+")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--height", type=int, default=200)
    ap.add_argument("--no-source", action="store_true")
    args = ap.parse_args()
    contact_sheet(args.sketches, args.frames, args.height, not args.no_source).save(args.out)


if __name__ == "__main__":
    main()
