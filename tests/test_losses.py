"""Each loss term does what it is for."""
import math

import pytest

import torch


from engine.losses import ChamferLoss, coverage_loss, find_groups, group_loss, length_loss, shape_loss, track_loss
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


def test_chamfer_loss_targets_a_frame_once_for_all_its_copies():
    frames = torch.ones(2, 3, 64, 64)
    frames[0, :, 20:23, 8:56] = 0.0
    frames[1, :, 8:56, 30:33] = 0.0
    once = ChamferLoss().prepare(frames, None, copies=3)                # a keyframe's seeds
    again = ChamferLoss().prepare(frames.repeat_interleave(3, 0), None)
    assert once.distance.shape[0] == 6 and torch.allclose(once.distance, again.distance)
    assert not torch.allclose(once.distance[0], once.distance[3])


def test_chamfer_loss_prefers_strokes_on_the_frames_lines():
    size = 96
    frame = torch.ones(1, 3, size, size)
    frame[..., 30:33, 10:86] = 0.0                          # one dark horizontal line
    loss = ChamferLoss()
    target = loss.prepare(frame, None)
    r = SplatRasterizer()

    def sketch(y):
        ctrl = torch.tensor([[[[10.0, y], [35.0, y], [60.0, y], [86.0, y]]]])
        return 1.0 - r(ctrl, torch.tensor([[2.0]]), torch.ones(1, 1), size).expand(-1, 3, -1, -1)

    on, near, far = (loss(sketch(y), target).item() for y in (31.5, 35.0, 75.0))
    assert on < near < far and on < 4.0         # Canny: the two edges of the dark band, 1.5 px off


def test_chamfer_loss_pays_for_ink_outside_the_subject():
    size = 96
    frame = torch.ones(1, 3, size, size)
    mask = torch.zeros(1, 1, size, size)
    mask[..., 20:60, 20:60] = 1.0                            # a square subject, no inner lines
    loss = ChamferLoss()
    target = loss.prepare(frame, mask)
    r = SplatRasterizer()

    def sketch(x):
        ctrl = torch.tensor([[[[x, 25.0], [x, 35.0], [x, 45.0], [x, 55.0]]]])
        return 1.0 - r(ctrl, torch.tensor([[2.0]]), torch.ones(1, 1), size).expand(-1, 3, -1, -1)

    on_edge, outside = loss(sketch(20.5), target).item(), loss(sketch(80.0), target).item()
    assert on_edge < 2.5 and outside > 12.0                  # the capped distance plus the way out


def test_coverage_loss_wants_the_whole_outline_drawn():
    outline = torch.stack([torch.linspace(0, 100, 51), torch.zeros(51)], -1)[None]
    valid = torch.ones(1, 51, dtype=torch.bool)
    half = torch.stack([torch.linspace(0, 50, 32), torch.zeros(32)], -1)[None, None]
    whole = torch.stack([torch.linspace(0, 100, 32), torch.zeros(32)], -1)[None, None]
    assert coverage_loss(whole, outline, valid, cap=12.0) < 0.5 * coverage_loss(half, outline, valid, cap=12.0)


def test_length_loss_holds_each_stroke_to_its_keyframe_length():
    line = torch.stack([torch.linspace(0, 30, 8), torch.zeros(8)], -1)[None, None]     # 30 px
    anchor = torch.tensor([30.0])
    assert length_loss(line, anchor).item() < 1e-9
    assert length_loss(line * 1.5, anchor).item() == pytest.approx(0.25, rel=1e-4)
    assert length_loss(line * 0.5, anchor).item() == pytest.approx(0.25, rel=1e-4)


def test_adam_matches_torchs_adam_with_frozen_strokes_and_a_clamped_area():
    """The optimiser's written-out Adam (engine/optimise.py) takes the steps torch.optim.Adam
    takes, frozen strokes stay put and no point leaves the area."""
    from engine.optimise import adam

    gen = torch.Generator().manual_seed(0)
    start = torch.rand(2, 3, 4, 2, generator=gen) * 50
    goal = torch.rand(2, 3, 4, 2, generator=gen) * 80
    trainable = torch.tensor([[True, False, True], [True, True, True]])

    def loss_fn(x):
        return ((x - goal) ** 2).sum((1, 2, 3))

    mine, _ = adam(start, 60, 0.7, loss_fn, lambda: False, trainable, area=(0, 0, 60, 60))
    reference = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([reference], lr=0.7)
    for _ in range(60):
        opt.zero_grad()
        loss_fn(reference).sum().backward()
        reference.grad.mul_(trainable[..., None, None])
        opt.step()
        with torch.no_grad():
            reference.clamp_(0, 60)
    assert torch.allclose(mine, reference.detach(), atol=1e-4)
    assert torch.equal(mine[0, 1], start[0, 1])
    assert mine.max() <= 60 and (mine - start).abs().max() > 5
