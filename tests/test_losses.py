"""Each loss term does what it is for."""
import math

import torch

from engine.losses import LineLoss, find_groups, group_loss, shape_loss, track_loss
from engine.rasterizer import SplatRasterizer


def rotate(points, angle, shift):
    c, s = math.cos(angle), math.sin(angle)
    r = torch.tensor([[c, -s], [s, c]], dtype=points.dtype)
    return points @ r.T + torch.tensor(shift, dtype=points.dtype)


def test_track_loss_counts_visible_points_only():
    pts = torch.zeros(1, 2, 3, 2)
    tracks = torch.ones(1, 2, 3, 2)
    visible = torch.zeros(1, 2, 3, dtype=torch.bool)
    assert track_loss(pts, tracks, visible).item() == 0.0
    visible[0, 0, 0] = True
    assert track_loss(pts, tracks, visible).item() == 2.0      # squared distance of (1, 1)
    assert track_loss(tracks, tracks, visible).item() == 0.0


def test_shape_loss_ignores_rigid_motion_and_sees_stretching():
    ref = torch.rand(1, 4, 6, 2) * 100
    moved = rotate(ref, 0.7, (12.0, -5.0))
    assert shape_loss(moved, ref).item() < 1e-8
    assert shape_loss(ref * 1.3, ref).item() > 1.0


def test_group_loss_ignores_group_rigid_motion_but_not_relative_motion():
    ref = torch.rand(1, 4, 6, 2, dtype=torch.float64) * 100
    groups = torch.tensor([0, 0, 2, 2])
    moved = rotate(ref, -0.4, (3.0, 9.0))
    assert group_loss(moved, ref, groups).item() < 1e-8
    apart = moved.clone()
    apart[0, 1] += 15.0                                     # stroke 1 leaves its group-mate
    assert group_loss(apart, ref, groups).item() > 10.0
    alone = moved.clone()
    alone[0, 1] += 15.0
    assert group_loss(alone, ref, torch.tensor([0, 1, 2, 3])).item() == 0.0   # no groups


def test_find_groups_links_touching_strokes():
    line = torch.linspace(0, 1, 5)[:, None] * torch.tensor([20.0, 0.0])
    strokes = torch.stack([line, line + torch.tensor([25.0, 0.0]), line + torch.tensor([50.0, 0.0]),
                           line + torch.tensor([0.0, 100.0])])
    labels = find_groups(strokes, touch=10.0)
    assert labels[0] == labels[1] == labels[2] and labels[3] != labels[0]


def test_line_loss_targets_a_frame_once_for_all_its_copies():
    frames = torch.rand(2, 3, 64, 64)
    once = LineLoss().prepare(frames, None, copies=3)                 # a keyframe's seeds
    for a, b in zip(once, LineLoss().prepare(frames.repeat_interleave(3, 0), None)):
        assert a.shape[0] == 6 and torch.allclose(a, b)


def test_line_loss_prefers_strokes_on_the_frames_lines():
    size = 96
    frame = torch.ones(1, 3, size, size)
    frame[..., 30:33, 10:86] = 0.0                          # one dark horizontal line
    loss = LineLoss()
    target = loss.prepare(frame, None)
    r = SplatRasterizer()

    def sketch(y):
        ctrl = torch.tensor([[[[10.0, y], [35.0, y], [60.0, y], [86.0, y]]]])
        return 1.0 - r(ctrl, torch.tensor([[2.0]]), torch.ones(1, 1), size).expand(-1, 3, -1, -1)

    on, near, far = (loss(sketch(y), target).item() for y in (31.5, 40.0, 75.0))
    assert on < near < far
