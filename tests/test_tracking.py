"""The Lucas-Kanade tracker on synthetic motion with known truth."""
import numpy as np

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
