"""Styles rendered through Blender: a contact sheet, and what a style adds to a render.

    python -m bench.styles SKETCH.json [--sheet OUT.png] [--frame 6] [--repeats 5] [--rounds 1]

Each style (docs/STYLES.md) is imported with Import DynaSketch and rendered headless with
Workbench and EEVEE, each in a Blender of its own (``bpy`` in a subprocess: one style per
process, as an artist renders after choosing one; a background Blender that has rendered
once does not take a changed stroke material). ``--sheet`` writes the renders side by side
with the footage colour and a chosen colour, and the sketch's own SVG for comparison.

Timing: in each style's Blender, Workbench renders of one frame of the styled result and of
its plain twin (the result as before styles: the builder's black material, no modifiers, the
engine's widths; the other one hidden), interleaved ``--repeats`` times after a warm-up,
medians (over ``--rounds`` passes). The ratio style / plain is what a style adds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLES = ("ink", "pencil", "brush", "marker", "chalk")

RENDER = r"""
import json, os, sys, time, bpy
sys.path.insert(0, {root!r})
bpy.ops.wm.read_factory_settings(use_empty=True)
import dynasketch_blender
from dynasketch_blender import styles
dynasketch_blender.register()
style, colour = {style!r}, {colour!r}
bpy.ops.dynasketch.import_sketch(filepath={sketch!r}, background="paper", style=style,
                                 line_colour=colour, line_custom=(0.05, 0.25, 0.8), boil={boil!r})
scene = bpy.context.scene
obj = [o for o in bpy.data.objects if o.type == "GREASEPENCIL"][0]
# its plain twin, as results were before styles: the builder's black material, no modifiers,
# the engine's widths; made before the first render (see the module docstring)
plain = obj.copy()
plain.data = obj.data.copy()
for mod in list(plain.modifiers):
    plain.modifiers.remove(mod)
for frame in plain.data.layers["Sketch"].frames:
    frame.drawing.attributes["material_index"].data.foreach_set("value", [0] * len(frame.drawing.strokes))
obj.users_collection[0].objects.link(plain)
plain.hide_render = True
scene.render.image_settings.file_format = "PNG"
scene.frame_set({frame})
times = {{"style": [], "plain": []}}
for engine in {engines!r}:
    scene.render.engine = engine
    scene.render.filepath = os.path.join({out!r}, f"{{style}}-{{colour}}-{{engine}}.png")
    bpy.ops.render.render(write_still=True)
scene.render.engine = "BLENDER_WORKBENCH"
for which in ["plain", "style"] + ["style", "plain"] * {repeats}:     # interleaved: the load hits both
    plain.hide_render, obj.hide_render = which == "style", which == "plain"
    start = time.perf_counter()
    bpy.ops.render.render()
    times[which].append(time.perf_counter() - start)
plain.hide_render, obj.hide_render = False, True            # the twin drew ink too: see main
scene.render.filepath = os.path.join({out!r}, f"{{style}}-{{colour}}-plain.png")
bpy.ops.render.render(write_still=True)
print("TIMES " + json.dumps(times), flush=True)
os._exit(0)
"""

ENGINES = ("BLENDER_WORKBENCH", "BLENDER_EEVEE")


def render(sketch: str, style: str, out: str, colour: str = "medium", frame: int = 6, repeats: int = 0,
           engines=ENGINES, boil: bool = False) -> dict:
    """Render ``style`` in a Blender of its own: each engine's PNG, and ``times``: Workbench
    renders of the frame (s), ``style`` and ``plain`` (its twin without a style) interleaved,
    the first of each left out (warm-up)."""
    script = RENDER.format(root=ROOT, sketch=os.path.abspath(sketch), style=style, colour=colour, frame=frame,
                           out=out, repeats=repeats, engines=tuple(engines), boil=boil)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("TIMES ")), None)
    if line is None:
        raise RuntimeError(f"{style}: Blender did not render ({done.returncode}): {done.stderr[-1500:]}")
    times = json.loads(line[6:])
    return {"times": times, "plain": os.path.join(out, f"{style}-{colour}-plain.png"),
            **{engine: os.path.join(out, f"{style}-{colour}-{engine}.png") for engine in engines}}


def labelled(path: str, text: str, height: int, crop=None) -> Image.Image:
    image = Image.open(path).convert("RGB")
    if crop is not None:
        image = image.crop(crop)
    image = image.resize((round(image.width * height / image.height), height), Image.LANCZOS)
    pen = ImageDraw.Draw(image)
    pen.rectangle([0, 0, 8 + 7 * len(text), 16], fill="white")
    pen.text((4, 2), text, fill="black", font=ImageFont.load_default())
    return image


def svg_picture(sketch: dict, frame: int, size: tuple[int, int]) -> Image.Image:
    """The sketch's SVG of that frame as any viewer fills it (its outlines), drawn with Pillow."""
    from engine.ink.outline import outline

    index = sketch["frames"][frame - 1]["index"]
    k = 4                                                    # drawn 4x and reduced: antialiased
    image = Image.new("RGB", (sketch["width"] * k, sketch["height"] * k), "white")
    pen = ImageDraw.Draw(image)
    for s in next(f for f in sketch["frames"] if f["index"] == index)["strokes"]:
        pen.polygon([tuple(p) for p in outline(s["points"], s["widths"]) * k], fill="black")
    return image.resize(size, Image.LANCZOS)


def ink_box(path: str, margin: int = 12) -> tuple[int, int, int, int]:
    """The box around the ink of a render on white paper, with a margin, as wide as the frame's
    aspect wants for its height."""
    grey = np.asarray(Image.open(path).convert("L"))
    ys, xs = np.nonzero(grey < 200)
    h, w = grey.shape
    y0, y1 = max(0, ys.min() - margin), min(h, ys.max() + margin)
    side = (y1 - y0) * 3 // 4
    cx = (xs.min() + xs.max()) // 2
    x0 = int(np.clip(cx - side // 2, 0, max(0, w - side)))
    return x0, int(y0), x0 + side, int(y1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sketch")
    parser.add_argument("--sheet", default="")
    parser.add_argument("--frame", type=int, default=6, help="scene frame to render")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1, help="times through all styles, interleaved")
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args(argv)
    out = tempfile.mkdtemp(prefix="styles-")
    times: dict = {}
    for _ in range(args.rounds):
        results = {name: render(args.sketch, name, out, frame=args.frame, repeats=args.repeats) for name in STYLES}
        for name in STYLES:
            for which, runs in results[name]["times"].items():
                times.setdefault(name, {}).setdefault(which, []).extend(runs[1:])
    print(f"Workbench render of one frame, medians of {args.repeats * args.rounds} renders each, "
          "the style and its plain twin interleaved in one Blender:")
    for name in STYLES:
        drawn = [np.asarray(Image.open(results[name][k]).convert("L")).min() for k in ("BLENDER_WORKBENCH", "plain")]
        if name != "chalk" and max(drawn) > 200:                        # pencil is light grey
            raise RuntimeError(f"{name}: a render without ink ({drawn}); the timing would mean nothing")
        styled, plain = float(np.median(times[name]["style"])), float(np.median(times[name]["plain"]))
        paired = float(np.median(np.array(times[name]["style"]) / np.array(times[name]["plain"])))
        print(f"  {name:7s} {styled:.3f} s, plain {plain:.3f} s: x{styled / plain:.3f} "
              f"(median of the renders side by side: x{paired:.3f})")
    if args.sheet:
        extra = {c: render(args.sketch, "ink", out, colour=c, frame=args.frame, repeats=0,
                           engines=("BLENDER_EEVEE",)) for c in ("footage", "custom")}
        h = args.height
        box = ink_box(results["ink"]["BLENDER_WORKBENCH"])       # the drawing, cropped around
        rows = [[labelled(results[n][e], f"{n} ({'Workbench' if 'WORK' in e else 'EEVEE'})", h, box)
                 for n in STYLES] for e in ENGINES]
        with open(args.sketch) as f:
            sketch = json.load(f)
        svg = svg_picture(sketch, args.frame, (sketch["width"], sketch["height"]))
        svg_path = os.path.join(out, "svg.png")
        svg.save(svg_path)
        rows.append([labelled(extra["footage"]["BLENDER_EEVEE"], "ink, footage colour", h, box),
                     labelled(extra["custom"]["BLENDER_EEVEE"], "ink, chosen colour", h, box),
                     labelled(svg_path, "the frame's SVG", h, box)])
        first = rows[0][0]
        w = first.width
        sheet = Image.new("RGB", (w * len(STYLES), h * len(rows)), (128, 128, 128))
        for r, row in enumerate(rows):
            for c, image in enumerate(row):
                sheet.paste(image, (c * w, r * h))
        sheet.save(args.sheet)
        print("sheet:", args.sheet)


if __name__ == "__main__":
    main()
