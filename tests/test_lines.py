"""Line extraction and vectorisation: strokes start on the subject's real lines."""
import json

import numpy as np
import pytest

from engine.lines import extract_lines, line_strokes
from engine.lines.vectorise import fit_cubics, prune_and_join, split_cubic, sub_cubic, trace_paths
from media import write_video
from test_cli import dynasketch


def bezier(c, n=50):
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 3 * c[0] + 3 * (1 - t) ** 2 * t * c[1] + 3 * (1 - t) * t ** 2 * c[2] + t ** 3 * c[3]


def house(size=224):
    """A grey house (square body, triangular roof) with a dark door line, and its mask."""
    rgb = np.full((size, size, 3), 255, np.uint8)
    mask = np.zeros((size, size), bool)
    yy, xx = np.mgrid[0:size, 0:size]
    body = (xx >= 60) & (xx < 164) & (yy >= 100) & (yy < 190)
    roof = (yy >= 40) & (yy < 100) & (np.abs(xx - 112) < (yy - 40) * 52 / 60)
    mask[body | roof] = True
    rgb[mask] = 150
    rgb[120:190, 100:104] = 30                                          # the door's edge
    return rgb, mask


def distance_to_outline(points, mask):
    import cv2
    edge = np.zeros(mask.shape, np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(edge, contours, -1, 1, 1)
    d = cv2.distanceTransform(1 - edge, cv2.DIST_L2, 5)
    p = np.clip(points.astype(int), 0, mask.shape[0] - 1)
    return d[p[..., 1], p[..., 0]]


def test_schneider_fit_recovers_a_cubic_and_splits_a_corner():
    c = np.array([[10.0, 10.0], [40.0, 80.0], [90.0, -20.0], [120.0, 50.0]])
    fit = fit_cubics(bezier(c, 200), error=0.5)
    assert len(fit) == 1 and np.abs(bezier(fit[0], 200) - bezier(c, 200)).max() < 1.0
    corner = np.concatenate([np.stack([np.linspace(0, 50, 51), np.zeros(51)], 1),
                             np.stack([np.full(50, 50.0), np.linspace(1, 50, 50)], 1)])
    pieces = fit_cubics(corner, error=1.0)
    assert len(pieces) >= 2 and np.allclose(pieces[0][0], [0, 0]) and np.allclose(pieces[-1][-1], [50, 50])
    # pieces of a cubic: the same curve
    halves = split_cubic(c, 2)
    assert halves.shape == (7, 2) and np.allclose(bezier(halves[:4], 3)[-1], bezier(c, 3)[1])
    assert np.allclose(bezier(sub_cubic(c, 0.25, 0.75), 3), bezier(c, 5)[1:4])


def test_skeleton_paths_join_straight_through_a_junction_and_drop_spurs():
    grid = np.zeros((60, 80), bool)
    grid[30, 5:75] = True                     # a long straight line
    grid[10:30, 40] = True                    # a branch meeting it at (40, 30)
    grid[31:34, 20] = True                    # a 3-pixel spur
    paths, ends = trace_paths(grid)
    joined = prune_and_join(paths, ends, spur=6)
    lengths = sorted(len(p) for p in joined)
    longest = max(joined, key=len)
    # the line whole (less the pixels inside the junctions' clusters) and the branch
    assert len(joined) == 2 and lengths[-1] >= 64
    assert set(longest[:, 1].astype(int)) == {30}


def test_a_few_strokes_are_the_outline_and_more_add_the_inner_lines():
    rgb, mask = house()
    lines = extract_lines(rgb, mask, np.ones(mask.shape, bool))
    assert lines.silhouette and lines.interior.any()
    four, kinds = line_strokes(lines, 4)
    assert four.shape == (4, 4, 2) and kinds.all()                     # 4 strokes: the outline
    assert np.median(distance_to_outline(bezier_all(four), mask)) < 3
    sixteen, kinds = line_strokes(lines, 16)
    assert len(sixteen) <= 16 and (~kinds).any()                       # and the door
    door = bezier_all(sixteen[~kinds])
    assert np.abs(door[..., 0] - 102).min() < 4


def bezier_all(strokes):
    return np.stack([bezier(s, 20) for s in strokes])


def test_the_frame_edge_is_no_outline():
    """A subject cut by the frame's edge: the silhouette runs stop at the edge."""
    rgb, mask = house()
    frame = np.zeros(mask.shape, bool)
    frame[:, :112] = True                                              # the frame ends mid-house
    lines = extract_lines(rgb, mask, frame)
    points = np.concatenate(lines.silhouette)
    assert points[:, 0].max() < 110


def test_a_flat_subject_or_an_empty_mask_gives_outline_only_or_nothing():
    rgb, mask = house()
    flat = np.full_like(rgb, 150)
    lines = extract_lines(flat, mask, np.ones(mask.shape, bool))
    strokes, kinds = line_strokes(lines, 8)
    assert len(strokes) and kinds.all()                                # just the outline
    empty = extract_lines(rgb, np.zeros(mask.shape, bool), np.ones(mask.shape, bool))
    assert empty.empty and line_strokes(empty, 8)[0].shape == (0, 4, 2)


@pytest.mark.parametrize("case", ["blank frames", "mask empty on some frames", "leaves and comes back"])
def test_bad_frames_keep_or_reseed_strokes_without_a_crash(tmp_path, case):
    t_len, h, w = 14, 96, 128
    frames = np.full((t_len, h, w, 3), 230, np.uint8)
    masks = np.zeros((t_len, h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for t in range(t_len):
        x = 40 + 2 * t if case != "leaves and comes back" else [40, 80, 120, 150, 150, 150, 120, 80][t % 8]
        disc = (xx - x) ** 2 + (yy - 48) ** 2 < 20 ** 2
        frames[t][disc] = 60
        frames[t][disc & ((xx - x) // 6 % 2 == 0)] = 140
        masks[t][disc] = 255
        if case == "blank frames" and 5 <= t < 9:
            frames[t][:] = 128                                         # a flat grey frame
        if case == "mask empty on some frames" and 5 <= t < 9:
            masks[t][:] = 0
    clip = write_video(str(tmp_path / "clip.mp4"), frames)
    mask = write_video(str(tmp_path / "clip.mask.mp4"), masks)
    out = tmp_path / "out"
    result = dynasketch("sketch", clip, "--mask", mask, "--out", out, "--strokes", 6, "--preset", "fast",
                        "--no-preview", "--progress", "json")
    assert result.returncode == 0, result.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    assert len(sketch["frames"]) == t_len and all(len(f["strokes"]) == 6 for f in sketch["frames"])
    points = np.array([[s["points"] for s in f["strokes"]] for f in sketch["frames"]])
    assert np.isfinite(points).all()
    log = (out / "dynasketch.log").read_text()
    if case == "mask empty on some frames":                      # nothing to draw there
        assert "frames 5, 6, 7, 8: no lines inside the subject" in log


def face(size=224):
    """A grey round head with two dark eyes and a darker nose (a toy bear's face), its mask,
    and the features' centres and radii."""
    rgb = np.full((size, size, 3), 255, np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    mask = (xx - 112) ** 2 + (yy - 112) ** 2 < 90 ** 2
    rgb[mask] = 170
    features = [((80, 95), 7), ((144, 95), 7), ((112, 140), 10)]
    for (cx, cy), r in features:
        rgb[(xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2] = 40
    return rgb, mask, features


def test_more_strokes_draw_the_inner_marks_a_person_would_draw():
    rgb, mask, features = face()
    lines = extract_lines(rgb, mask, np.ones(mask.shape, bool))
    assert len(lines.marks) == 3                      # the eyes and the nose, nothing else
    four, kinds = line_strokes(lines, 4)
    assert kinds.all()                                # 4 strokes stay the outline
    sixteen, kinds = line_strokes(lines, 16)
    marks = bezier_all(sixteen[~kinds])               # (K, 50, 2)
    for (cx, cy), r in features:                      # each feature has a stroke round it
        ring = np.abs(np.hypot(marks[..., 0] - cx, marks[..., 1] - cy) - r)
        assert (ring.mean(-1) < 3).any(), (cx, cy)
    closed = np.linalg.norm(marks[:, 0] - marks[:, -1], axis=-1) < 0.35 * np.linalg.norm(
        np.diff(marks, axis=1), axis=-1).sum(-1)
    assert closed.sum() >= 3                          # drawn as closed strokes round them
    eight, kinds = line_strokes(lines, 8)             # 8 strokes: the outline and the nose
    assert kinds.sum() >= 4
    nose = bezier_all(eight[~kinds])
    assert (np.abs(np.hypot(nose[..., 0] - 112, nose[..., 1] - 140) - 10).mean(-1) < 3).any()


def test_a_thin_line_of_the_subject_is_drawn_along_its_length_once(tmp_path):
    """A ball on a string, the string one pixel wide in a 960x720 frame (about a third of a
    canvas pixel once the subject is fitted to the canvas), swinging: a stroke runs along the
    string on every frame, not a row of dashes, and no second stroke doubles it."""
    import cv2
    from PIL import Image

    frames, strings = 6, []
    (tmp_path / "clip").mkdir()
    for t in range(frames):
        rgb = np.full((720, 960, 3), 235, np.uint8)
        mask = np.zeros((720, 960), np.uint8)
        top, bottom = (480, 60), (480 + 14 * t, 560)
        for image, colour in ((rgb, (40, 40, 40)), (mask, 255)):
            cv2.line(image, top, bottom, colour, 1)
            cv2.circle(image, bottom, 90, (200, 60, 40) if image is rgb else 255, -1)
            cv2.rectangle(image, (430, 40), (530, 62), (30, 90, 160) if image is rgb else 255, -1)
        Image.fromarray(rgb).save(tmp_path / "clip" / f"f_{t:03d}.png")
        Image.fromarray(mask).save(tmp_path / "clip" / f"m_{t:03d}.png")
        strings.append((np.array(top, float), np.array(bottom, float) - (0, 90)))   # the string above the ball
    out = tmp_path / "out"
    result = dynasketch("sketch", tmp_path / "clip" / "f_%03d.png", "--mask", tmp_path / "clip" / "m_%03d.png",
                        "--out", out, "--preset", "fast", "--strokes", 6, "--seeds", 1, "--no-preview")
    assert result.returncode == 0, result.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    for frame, (a, b) in zip(sketch["frames"], strings):
        along = []
        for stroke in frame["strokes"]:
            pts = np.array(stroke["points"], float)
            pieces = [bezier(pts[i:i + 4]) for i in range(0, len(pts) - 1, 3)]
            pts = np.concatenate(pieces)
            u = np.clip(((pts - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
            near = np.linalg.norm(pts - (a + u[:, None] * (b - a)), axis=1) < 12      # 2.5% of the subject
            along.append(np.ptp(u[near]) if near.mean() > 0.5 else 0.0)    # how much of the string it spans
        along = np.array(along)
        assert along.max() > 0.6, (frame["index"], along.round(2).tolist())     # one stroke runs along it
        assert (along > 0.3).sum() == 1, (frame["index"], along.round(2).tolist())   # and only one


@pytest.mark.parametrize("strings", [7, 9])
def test_the_first_frame_draws_each_string_of_a_fan_once(tmp_path, strings):
    """A paraglider's fan of one-pixel strings, 16 strokes: the first frame (drawn from scratch,
    then held to a window's second pass) has no string drawn twice along any stretch; where
    no line is left free a stroke may be a dash, but never a second stroke along a string."""
    import cv2

    t_len, size, pilot = 3, 320, (160, 260)
    frames = np.full((t_len, size, size, 3), 200, np.uint8)
    masks = np.zeros((t_len, size, size, 3), np.uint8)
    ends = [(50 + round(220 * k / (strings - 1)), 90) for k in range(strings)]
    for rgb, mask in zip(frames, masks):
        cv2.ellipse(rgb, (160, 70), (130, 26), 0, 0, 360, (180, 90, 40), -1)
        cv2.ellipse(mask, (160, 70), (130, 26), 0, 0, 360, (255, 255, 255), -1)
        for end in ends:
            cv2.line(rgb, end, pilot, (30, 30, 30), 1)
            cv2.line(mask, end, pilot, (255, 255, 255), 1)
        cv2.circle(rgb, (160, 272), 14, (40, 60, 150), -1)
        cv2.circle(mask, (160, 272), 14, (255, 255, 255), -1)
    clip = write_video(str(tmp_path / "clip.mp4"), frames)
    mask = write_video(str(tmp_path / "clip.mask.mp4"), masks)
    out = tmp_path / "out"
    result = dynasketch("sketch", clip, "--mask", mask, "--out", out, "--strokes", 16, "--no-preview")
    assert result.returncode == 0, result.stderr
    first = json.loads((out / "sketch.json").read_text())["frames"][0]
    drawn = np.zeros((strings, 20), int)          # strokes along each twentieth of each string
    for stroke in first["strokes"]:
        pts = np.array(stroke["points"], float)
        pts = np.concatenate([bezier(pts[i:i + 4]) for i in range(0, len(pts) - 1, 3)])
        for k, end in enumerate(ends):
            a, b = np.array(end, float), np.array(pilot, float)
            u = np.clip(((pts - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
            near = np.linalg.norm(pts - (a + u[:, None] * (b - a)), axis=1) < 4
            if near.mean() > 0.5 and np.ptp(u[near]) > 0.1:          # along it, not a dash across
                drawn[k, np.unique((u[near] * 19.999).astype(int))] += 1
    twice = drawn[:, 2:15].max(1)                 # away from the wing and the pilot, where strings meet
    assert (twice <= 1).all(), twice.tolist()
    assert (drawn.max(1) >= 1).sum() >= strings - 1, drawn.max(1).tolist()   # and the strings are drawn


def test_the_lines_between_the_outer_ones_of_a_fan_are_lines_too():
    """A paraglider: a wing, a pilot and five one-pixel lines fanning between them. The mask's
    outline takes only the two outermost lines (the ones between border holes of the mask);
    the three between are lines of the subject all the same."""
    import cv2

    rgb = np.full((224, 224, 3), 200, np.uint8)
    mask = np.zeros((224, 224), np.uint8)
    ends = [(40 + 36 * k, 60) for k in range(5)]
    for image, value in ((rgb, (30, 30, 30)), (mask, 1)):
        cv2.ellipse(image, (112, 45), (90, 18), 0, 0, 360, (180, 90, 40) if image is rgb else 1, -1)
        for end in ends:
            cv2.line(image, end, (112, 180), value, 1)
        cv2.circle(image, (112, 188), 10, (40, 60, 150) if image is rgb else 1, -1)
    lines = extract_lines(rgb, mask.astype(bool), np.ones((224, 224), bool))
    for end in ends[1:-1]:
        t = np.linspace(0.15, 0.85, 40)[:, None]
        along = np.round((1 - t) * np.array(end) + t * np.array((112, 180))).astype(int)
        near = np.array([lines.image[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3].any() for x, y in along])
        assert near.mean() > 0.8, (end, near.mean())


def wavy_blob(dx=0.0, size=224, inner=None):
    """A grey five-lobed blob (a curvy outline that takes many cubics), moved ``dx`` px right;
    ``inner``: the ends of a dark line drawn across it."""
    import cv2

    yy, xx = np.mgrid[0:size, 0:size]
    theta, r = np.arctan2(yy - 112, xx - 112 - dx), np.hypot(yy - 112, xx - 112 - dx)
    mask = r <= 62 + 14 * np.sin(5 * theta)
    rgb = np.full((size, size, 3), 255, np.uint8)
    rgb[mask] = 150
    if inner is not None:
        cv2.line(rgb, *inner, (20, 20, 20), 2)
    return extract_lines(rgb, mask, np.ones(mask.shape, bool)), mask


def cubic_length(c):
    return float(np.linalg.norm(np.diff(bezier(c), axis=0), axis=1).sum())


@pytest.mark.parametrize("count", [8, 16])
def test_a_reseeded_stroke_takes_the_whole_stretch_of_outline_left_undrawn(count):
    """Re-seeding one stroke of a drawing carried 3 px with its subject: the new stroke fills
    the stretch of outline the strokes kept leave undrawn, as long as the stroke it replaces
    (not a short piece of a finer cut, which shortens the drawing at every re-seed)."""
    lines, _ = wavy_blob()
    drawn, kinds = line_strokes(lines, count)
    moved, mask = wavy_blob(3.0)

    for gone in np.flatnonzero(kinds)[:3]:        # each of the three longest outline strokes in turn
        kept = np.delete(drawn, gone, axis=0) + np.array([3.0, 0.0])
        new, _ = line_strokes(moved, count, avoid=kept)
        assert np.median(distance_to_outline(bezier(new[0]), mask)) < 3
        assert cubic_length(new[0]) >= 0.9 * cubic_length(drawn[gone])
        # where the stroke that went was, not on a stroke kept
        assert np.abs(bezier(new[0]) - bezier(drawn[gone] + [3.0, 0.0])).max() < 0.15 * cubic_length(drawn[gone])


def test_a_reseed_takes_a_long_inner_line_before_a_sliver_of_outline():
    """Re-seeding where the strokes kept leave only a sliver of the outline undrawn and a long
    inner line free: the new stroke draws the inner line (a stroke keeps its length as its
    anchor, so a re-seed onto a sliver stays a sliver and the drawing shortens)."""
    lines, _ = wavy_blob(inner=((82, 120), (142, 104)))
    drawn, kinds = line_strokes(lines, 16)
    assert len(kinds) == len(drawn) and not kinds.all()
    inner = drawn[~kinds][0]
    assert np.abs(bezier(inner)[[0, -1]].mean(0) - (112, 112)).max() < 6       # the line across
    kept = drawn[kinds].copy()
    kept[0] = sub_cubic(kept[0], 0.2, 1.0)                                      # a sliver left undrawn
    new, _ = line_strokes(lines, 16, avoid=kept)
    assert cubic_length(new[0]) >= 0.8 * cubic_length(inner)
    assert np.abs(bezier(new[0]) - bezier(inner)).max() < 6 or np.abs(bezier(new[0])[::-1] - bezier(inner)).max() < 6
