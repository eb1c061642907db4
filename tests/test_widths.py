"""Line weight (engine/ink): split strokes are the same curve; widths follow the line under
the stroke, taper at both ends and hold steady over time; the SVGs show them; a real run
writes them."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

from engine import bezier
from engine.export import stroke_records, svg_document
from engine.ink import LineWeights, split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def curve(control, m=200):
    return bezier.evaluate_along(torch.tensor(control, dtype=torch.float64), m).numpy()


def test_split_strokes_are_the_same_curve_with_a_middle():
    rng = np.random.default_rng(1)
    control = rng.uniform(0, 200, (5, 4, 2))
    cut = split(control)
    assert cut.shape == (5, 13, 2)                                   # 5 on-curve points
    dense = curve(control, 801)
    for got, want in zip(curve(cut, 801), dense):                    # the same points, same order
        assert np.abs(got - want).max() < 1e-6
    two = rng.uniform(0, 200, (2, 7, 2))                              # S = 2 strokes split too
    assert np.abs(curve(split(two), 401) - curve(two, 401)).max() < 1e-6


def lines_image():
    """A 224 canvas: a dark 4 px line across the top, a faint one below, blank paper lower."""
    rgb = np.full((224, 224, 3), 245, np.uint8)
    rgb[58:62, 10:214] = 15
    rgb[118:120, 10:214] = 215
    return rgb


def straight(y, x0=20, x1=204):
    xs = np.linspace(x0, x1, 4)
    return np.stack([xs, np.full(4, float(y))], -1)


def test_strong_lines_are_thick_soft_ones_thin_and_ends_taper():
    strokes = np.stack([straight(60), straight(119), straight(180)])
    _, widths = LineWeights().weigh(strokes, lines_image(), None, 2.0)
    dark, faint, blank = widths
    assert dark[2] > 1.3 * faint[2] and faint[2] >= blank[2]
    assert dark[2] > 2.0 and blank[2] < 1.5                          # around the one width of 2
    for w in widths:
        assert w[0] < 0.6 * w[2] and w[-1] < 0.6 * w[2]              # tapered at both ends
        assert max(w[0], w[-1]) < min(w[1:-1])


def test_the_subject_outline_counts_as_a_strong_line():
    rgb = np.full((224, 224, 3), 240, np.uint8)                       # no edge in the picture
    mask = np.zeros((224, 224), bool)
    mask[:120] = True
    _, widths = LineWeights().weigh(np.stack([straight(120), straight(60)]), rgb, mask, 2.0)
    assert widths[0][2] > 1.3 * widths[1][2]


def test_widths_hold_steady_through_noisy_frames():
    """Sensor noise and a line that comes and goes for a frame: the stroke's widths move less
    than its raw measure does."""
    rng = np.random.default_rng(0)
    steady, raw = LineWeights(), []
    smooth = []
    for t in range(12):
        rgb = lines_image().astype(float) + rng.normal(0, 12, (224, 224, 3))
        if t % 3 == 0:
            rgb[58:62] = 245                                          # the line vanishes a frame
        rgb = rgb.clip(0, 255).astype(np.uint8)
        stroke = straight(60 + 0.3 * t)[None]
        smooth.append(steady.weigh(stroke, rgb, None, 2.0)[1][0])
        raw.append(LineWeights().weigh(stroke, rgb, None, 2.0)[1][0])
    jump = lambda w: np.abs(np.diff(np.array(w), axis=0)).mean()      # noqa: E731
    assert jump(smooth[2:]) < 0.5 * jump(raw[2:])


def test_a_reseeded_stroke_starts_afresh():
    weights = LineWeights()
    weights.weigh(straight(60)[None], lines_image(), None, 2.0)        # thick on the dark line
    _, far = weights.weigh(straight(180)[None], lines_image(), None, 2.0)
    _, fresh = LineWeights().weigh(straight(180)[None], lines_image(), None, 2.0)
    assert np.allclose(far, fresh)


def outline_polygons(svg: str):
    return [[tuple(map(float, p.split())) for p in re.findall(r"[ML] ([-\d.]+ [-\d.]+)", d)]
            for d in re.findall(r'd="([^"]+)" fill="black"', svg)]


def test_svg_draws_variable_width_as_a_filled_outline():
    cut, widths = LineWeights().weigh(np.stack([straight(60)]), lines_image(), None, 3.0)
    svg = svg_document(stroke_records(cut, 3.0, widths=widths), 224, 224)
    assert 'fill="black"' in svg and "stroke-width" not in svg
    (ring,) = outline_polygons(svg)
    image = Image.new("L", (224, 224), 0)
    ImageDraw.Draw(image).polygon(ring, fill=255)
    ink = np.asarray(image) > 0
    thickness = ink.sum(0)                                            # per column
    assert thickness[112] >= 4 and thickness[112] > 2 * thickness[23]  # thick middle, thin ends
    assert not ink[:50].any() and not ink[70:].any()                  # on the line only
    plain = svg_document(stroke_records(straight(60)[None], 3.0), 224, 224)
    assert 'stroke-width="3.0"' in plain                              # a stroke without widths as before


def test_a_run_writes_widths_in_sketch_json_and_svg(disc_clip, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "engine", "sketch", disc_clip["video"], "--out", str(out),
                           "--mask", disc_clip["mask"], "--preset", "fast", "--strokes", "4", "--seeds", "1",
                           "--frames", "0:6", "--no-preview", "--progress", "none"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    middles, ends = [], []
    for frame in sketch["frames"]:
        for s in frame["strokes"]:
            assert len(s["points"]) == 13 and len(s["widths"]) == 5
            middles.append(max(s["widths"][1:-1]))
            ends.append(max(s["widths"][0], s["widths"][-1]))
    assert np.mean(ends) < 0.6 * np.mean(middles)
    by_id = np.array([[s["widths"] for s in f["strokes"]] for f in sketch["frames"]])   # (T, N, 5)
    assert np.abs(np.diff(by_id, axis=0)).mean() < 0.15 * by_id.mean()    # no flicker
    svg = (out / "svg" / "frame_000003.svg").read_text()
    assert len(outline_polygons(svg)) == 4
    assert all(len(s["colour"]) == 3 for f in sketch["frames"] for s in f["strokes"])


def test_colour_is_the_footage_under_the_stroke_and_steady():
    from engine.ink import StrokeColours

    rgb = np.full((224, 224, 3), 240, np.uint8)
    rgb[100:140] = (200, 90, 30)                                       # an orange band
    colours = StrokeColours()
    got = colours.colour(split(straight(120)[None]), rgb, None)
    assert np.abs(got[0] * 255 - (200, 90, 30)).max() < 1.0
    noisy = rgb.copy()
    noisy[117:124] = (20, 20, 200)                                     # a blue line under it for a frame
    once = colours.colour(split(straight(120)[None]), noisy, None)
    raw = StrokeColours().colour(split(straight(120)[None]), noisy, None)
    assert np.abs(once - got).max() < 0.5 * np.abs(raw - got).max()
    inside = np.zeros((224, 224), bool)                                # off the frame: as it was
    assert np.allclose(colours.colour(split(straight(120)[None]), rgb, inside), once)
