"""The Lucas-Kanade tracker on synthetic motion with known truth."""
import numpy as np
import torch

from engine.tracking import LucasKanadeTracker


def textured(size=160, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (size // 4, size // 4)).astype(np.uint8)
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)


def test_follows_a_known_translation():
    base = textured(200)
    shift = np.array([1.5, -1.0])                       # pixels per frame (x, y)
    import cv2

    video = np.stack([cv2.warpAffine(base, np.float32([[1, 0, shift[0] * t], [0, 1, shift[1] * t]]),
                                     (200, 200), borderMode=cv2.BORDER_REFLECT) for t in range(8)])
    points = np.array([[60.0, 80.0], [100.0, 100.0], [130.0, 70.0]], np.float32)
    tracks, visible = LucasKanadeTracker().track(video, points)
    assert tracks.shape == (8, 3, 2) and visible.all()
    truth = points[None] + shift[None, None] * np.arange(8)[:, None, None]
    assert np.abs(tracks - truth).max() < 0.3


def test_points_leaving_or_occluded_are_lost():
    base = textured(160, seed=1)
    video = np.stack([np.roll(base, 6 * t, axis=1) for t in range(6)])
    video[3:, 60:100, 60:100] = 0                       # an occluder from frame 3
    points = np.array([[150.0, 40.0], [80.0, 80.0], [30.0, 130.0]], np.float32)
    tracks, visible = LucasKanadeTracker().track(video, points)
    assert not visible[-1, 0]                            # moved past the right edge
    assert visible[2, 1] and not visible[-1, 1]          # covered from frame 3 on
    assert visible[:, 2].all()
    assert not visible[3:, 1].any()                      # once lost, stays lost


def test_grid_queries_cover_the_mask_only():
    import torch

    from engine.tracking import grid_queries

    assert grid_queries(None, (0.0, 0.0, 224.0, 224.0), 40).shape == (1600, 2)
    mask = torch.zeros(224, 224)
    mask[50:150, 20:120] = 1
    grid = grid_queries(mask, (0.0, 0.0, 224.0, 224.0), 40)
    assert 250 < len(grid) < 350                                   # ~ (100/224)^2 of 1600
    assert ((grid[:, 0] >= 20) & (grid[:, 0] < 120) & (grid[:, 1] >= 50) & (grid[:, 1] < 150)).all()
    assert len(grid_queries(torch.zeros(224, 224), (0.0, 0.0, 224.0, 224.0), 40)) == 1600   # no subject


def test_strokes_follow_the_grid_and_lost_points_stay_lost():
    import torch

    from engine.tracking import follow_grid

    grid = torch.stack(torch.meshgrid(torch.arange(0.0, 100.0, 10.0), torch.arange(0.0, 100.0, 10.0),
                                      indexing="xy"), -1).reshape(-1, 2)           # (100, 2)
    shift = torch.tensor([2.0, -1.0])
    t = torch.arange(6.0)[:, None, None]
    grid_tracks = grid[None] + t * shift                                           # (6, 100, 2)
    grid_visible = torch.ones(6, 100, dtype=torch.bool)
    left = grid[:, 0] < 45
    grid_visible[3:, left] = False                                                 # left half lost at 3
    grid_visible[4, left] = True                                                   # ...a flicker back
    points = torch.tensor([[73.0, 41.0], [12.0, 57.0]])
    tracks, visible = follow_grid(grid_tracks, grid_visible, points)
    assert torch.allclose(tracks[:, 0], points[0] + t[:, 0] * shift, atol=1e-4)    # the right one moves
    assert visible[:, 0].all()
    assert visible[:3, 1].all() and not visible[3:, 1].any()                      # lost stays lost
    assert torch.allclose(tracks[3:, 1], tracks[2, 1].expand(3, 2))               # frozen where last seen
    later, seen = follow_grid(grid_tracks, grid_visible, points[:1] + 2 * shift, start=2)
    assert later.shape == (4, 1, 2) and seen.all()
    assert torch.allclose(later[-1, 0], points[0] + 5 * shift, atol=1e-4)


def test_a_lost_point_goes_on_with_the_grid_without_a_jump():
    import torch

    from engine.tracking import with_grid_fallback

    grid = torch.stack(torch.meshgrid(torch.arange(0.0, 100.0, 10.0), torch.arange(0.0, 100.0, 10.0),
                                      indexing="xy"), -1).reshape(-1, 2)
    t = torch.arange(6.0)[:, None, None]
    grid_tracks = grid[None] + t * torch.tensor([2.0, 0.0])                       # the grid moves right
    grid_visible = torch.ones(6, 100, dtype=torch.bool)
    own = torch.tensor([[33.0, 33.0]]) + t * torch.tensor([2.5, 0.0])            # its own track, a bit faster
    own_visible = torch.ones(6, 1, dtype=torch.bool)
    own_visible[3:] = False                                                       # lost at frame 3
    own[3:] = own[2]                                                              # (frozen, as trackers do)
    tracks, visible = with_grid_fallback(own, own_visible, grid_tracks, grid_visible)
    assert visible.all()
    assert torch.allclose(tracks[:3], own[:3])
    steps = tracks[1:, 0, 0] - tracks[:-1, 0, 0]
    assert torch.allclose(steps[2:], torch.full((3,), 2.0), atol=1e-4)           # then the grid's motion


def test_points_with_start_frames_track_as_if_given_on_their_own():
    """Re-initialised strokes start on later frames: one call with a start per point gives
    what separate calls on the rest of the video give."""
    base = textured(200, seed=2)
    video = np.stack([np.roll(base, (2 * t, -t), axis=(1, 0)) for t in range(7)])
    points = np.array([[50.0, 60.0], [120.0, 90.0], [80.0, 140.0], [199.5, 10.0]], np.float32)
    start = np.array([0, 2, 4, 2])
    tracks, visible = LucasKanadeTracker().track(video, points, start)
    for s in (0, 2, 4):
        own = start == s
        alone, alone_visible = LucasKanadeTracker().track(video[s:], points[own])
        assert np.array_equal(tracks[s:, own], alone) and np.array_equal(visible[s:, own], alone_visible)
        assert not visible[:s, own].any() and (tracks[:s, own] == points[own]).all()
    assert visible[-1, :3].all() and not visible[:, 3].any()       # the last starts off the frame


def test_the_grid_is_made_where_the_strokes_are(device):
    """Without a mask the grid still goes on the run's device (it is tracked with the strokes'
    points in one tensor)."""
    from engine.tracking import grid_queries

    area = (0.0, 0.0, 224.0, 224.0)
    assert grid_queries(None, area, 8, device=device).device.type == device.type
    mask = torch.ones(224, 224, device=device)
    assert grid_queries(mask, area, 8).device.type == device.type


def test_a_one_pixel_string_moves_with_its_subject_not_with_the_background_behind_it():
    from engine.tracking import STRAY, grid_queries, solid_and_thin, thin_parts_with_grid, with_grid_fallback

    background, body = textured(224, seed=1) // 4 + 96, textured(224, seed=2)    # faint hills, a bold subject
    frames, masks = [], []
    for t in range(6):                   # the background slides right, the subject (a block
        dx, dy = 3 * t, 2 * t            # on a string) moves down
        frame = np.roll(background, dx, axis=1).copy()
        mask = np.zeros((224, 224), bool)
        mask[40 + dy:100 + dy, 80:140] = True
        frame[mask] = np.roll(body, dy, axis=0)[mask]
        mask[100 + dy:180 + dy, 110] = True
        frame[100 + dy:180 + dy, 110] = 0
        frames.append(frame)
        masks.append(mask)
    video = np.stack(frames)
    string = np.stack([np.full(6, 110.0), np.linspace(115, 170, 6)], 1).astype(np.float32)   # (6, 2)
    truth = string[None] + np.array([0.0, 2.0])[None, None] * np.arange(6)[:, None, None]
    solid, thin = solid_and_thin(torch.from_numpy(masks[0]).float()[None])
    assert thin[130, 110] and not thin[70, 110]
    grid = grid_queries(solid, (0, 0, 224, 224), 40)
    tracker = LucasKanadeTracker()
    both, seen = (torch.from_numpy(a) for a in tracker.track(video, np.concatenate([string, grid.numpy()])))
    tracks, visible = with_grid_fallback(both[:, :6], seen[:, :6], both[:, 6:], seen[:, 6:])
    assert (tracks[-1] - torch.from_numpy(truth[-1])).norm(dim=-1).max() > 5       # the tracker slid with the hills
    held, held_visible = thin_parts_with_grid(tracks, visible, torch.from_numpy(string), thin,
                                              both[:, 6:], seen[:, 6:], STRAY)
    assert held_visible.all()
    off = (held - torch.from_numpy(truth)).norm(dim=-1)
    assert off.max() < STRAY and off[-1].median() < 1.0       # a track may stray up to STRAY and stay its own
