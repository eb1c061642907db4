"""The canvas follows the subject: a window around its mask, steady over time, mapped back
to source pixels exactly."""
import json

import numpy as np
import torch

from bench.metrics import control_points
from engine.bezier import evaluate
from engine.canvas import Letterbox, SubjectFraming, subject_pixels, subject_window
from media import write_video
from test_cli import dynasketch


def test_a_window_maps_source_pixels_to_the_canvas_and_back():
    box = Letterbox(640, 360, 224, window=(300, 100, 112))        # 2 canvas px per source px
    points = np.array([[300.0, 100.0], [356.0, 156.0], [412.0, 212.0], [250.0, 90.0]])
    canvas = box.to_canvas(points)
    assert np.allclose(canvas, [[0, 0], [112, 112], [224, 224], [-100, -20]])
    assert np.allclose(box.to_source(canvas), points)
    assert box.scale == 2.0
    # a pixel of the source lands where to_canvas says, in the fitted image too
    image = np.zeros((360, 640), np.uint8)
    image[150:154, 340:344] = 255                                   # centre (342, 152)
    fitted = box.fit(image, fill=0).astype(np.float64)
    ys, xs = np.mgrid[0:224, 0:224]
    centre = np.array([(xs * fitted).sum(), (ys * fitted).sum()]) / fitted.sum() + 0.5
    assert np.allclose(centre, box.to_canvas(np.array([342.0, 152.0])), atol=0.5)


def test_a_window_past_the_frame_is_padding_and_not_the_frame():
    box = Letterbox(200, 100, 100, window=(150, 20, 100))           # half of it right of the frame
    fitted = box.fit(np.full((100, 200, 3), 40, np.uint8))
    assert (fitted[:80, :50] == 40).all() and (fitted[:, 51:] == 255).all() and (fitted[81:] == 255).all()
    assert box.frame_area() == (0, 0, 50, 80)
    inside = box.inside()
    assert inside[:80, :50].all() and not inside[:, 50:].any() and not inside[80:].any()


def test_a_subject_of_a_tenth_of_the_frame_gets_the_whole_canvas():
    mask = np.zeros((1080, 1920), np.uint8)
    mask[500:800, 900:1100] = 1                                     # 300 x 200: ~3% of the frame
    cx, cy, side = subject_window(mask)
    assert (cx, cy) == (1000.0, 650.0) and side == 300 * 1.3
    box = SubjectFraming(1920, 1080, 224)(mask)
    ys, xs = np.nonzero(box.fit(mask * 255, fill=0) > 127)
    assert ys.max() - ys.min() > 224 * 0.7                         # the subject spans the canvas
    assert SubjectFraming(1920, 1080, 224)(None) == Letterbox(1920, 1080, 224)   # no mask: the frame


def test_the_window_is_steady_and_keeps_the_subject_in_view():
    framing = SubjectFraming(640, 360, 224)
    mask = np.zeros((360, 640), np.uint8)
    windows = []
    for t in range(30):
        mask[:] = 0
        x = 100 + 12 * t                                              # the subject moves right
        mask[150:210, x:x + 60] = 1
        box = framing(mask)
        windows.append(box.window)
        x0, y0, side = box.window
        assert x0 <= x and x + 60 <= x0 + side and y0 <= 150 and 210 <= y0 + side    # in view
    steps = np.abs(np.diff(np.array(windows, float), axis=0))
    assert steps[:, 2].max() <= 2                                     # the zoom does not pump
    assert steps[:, 0].max() <= 16                                    # no jumps beyond the motion
    mask[:] = 0
    assert framing(mask).window == windows[-1]                        # an empty mask keeps it


def test_a_thin_part_of_the_subject_stays_one_line_on_the_canvas():
    """A paraglider's line, a leash, a pole: one source pixel wide, shrunk 2.3x onto the canvas
    it covers under half of each canvas pixel. It stays an unbroken line of the subject; the
    body's outline does not grow."""
    import cv2

    mask = np.zeros((900, 900), np.float32)
    cv2.circle(mask, (450, 250), 150, 1.0, -1)                       # the body
    cv2.line(mask, (450, 400), (200, 850), 1.0, 1)                   # a line hanging from it
    coverage = cv2.resize(mask, (384, 384), interpolation=cv2.INTER_AREA)
    halves = coverage >= 0.5
    pixels = subject_pixels(coverage) > 0.5
    count, labels = cv2.connectedComponents(pixels.astype(np.uint8), connectivity=8)
    assert count == 2                                                # the body and its line, one piece
    line = np.zeros_like(pixels)
    line[200:, :] = True                                             # below the body
    assert (pixels & line).sum() > 0.9 * 450 / 2.34                  # all along the line's length
    assert (halves & line).sum() < 0.5 * (pixels & line).sum()       # which "over half" broke up
    body = cv2.circle(np.zeros((384, 384), np.uint8), (192, 107), 64, 1, -1) > 0
    assert abs(int((pixels & ~line).sum()) - int((halves & ~line).sum())) < 0.02 * body.sum()


def test_strokes_come_back_on_the_subject_in_source_pixels(tmp_path):
    """A small square subject in a wide frame: the sketch, made on the subject's canvas,
    lies on the square's outline in source pixels (within 3% of its diagonal)."""
    frames = np.full((6, 270, 480, 3), 230, np.uint8)
    masks = np.zeros((6, 270, 480, 3), np.uint8)
    for t in range(6):
        x = 300 + 2 * t
        frames[t, 100:150, x:x + 50] = 40
        masks[t, 100:150, x:x + 50] = 255
    clip = write_video(str(tmp_path / "square.mp4"), frames)
    mask = write_video(str(tmp_path / "square.mask.mp4"), masks)
    out = tmp_path / "out"
    result = dynasketch("sketch", clip, "--mask", mask, "--out", out, "--strokes", 4, "--preset", "fast",
                        "--no-preview")
    assert result.returncode == 0, result.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    pts = evaluate(torch.from_numpy(control_points(sketch)), 20).numpy()             # (T, N, 20, 2)
    for t, frame in enumerate(pts):
        x0, x1, y0, y1 = 300 + 2 * t, 350 + 2 * t, 100, 150
        dx = np.minimum(np.abs(frame[..., 0] - x0), np.abs(frame[..., 0] - x1))
        dy = np.minimum(np.abs(frame[..., 1] - y0), np.abs(frame[..., 1] - y1))
        on_outline = np.minimum(np.where((frame[..., 1] > y0 - 3) & (frame[..., 1] < y1 + 3), dx, 99),
                                np.where((frame[..., 0] > x0 - 3) & (frame[..., 0] < x1 + 3), dy, 99))
        assert np.mean(on_outline < 0.03 * np.hypot(50, 50)) > 0.9, (t, on_outline.round(1))
