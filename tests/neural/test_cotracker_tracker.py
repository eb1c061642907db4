"""The CoTracker3 adapter through the real predictor, on randomly initialised CoTracker3
weights (small working resolution) saved as a checkpoint. Skips when CoTracker (not on PyPI)
is not installed."""
import numpy as np
import pytest
import torch

pytest.importorskip("cotracker")

from engine.errors import EngineError  # noqa: E402
from engine.neural.cotracker_tracker import CoTrackerTracker  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from cotracker.models.core.cotracker.cotracker3_offline import CoTrackerThreeOffline

    torch.manual_seed(0)
    # window 4 (the released checkpoint uses 60) so that 9 frames take three windows
    model = CoTrackerThreeOffline(stride=4, corr_radius=3, window_len=4, model_resolution=(96, 128))
    path = tmp_path_factory.mktemp("cotracker") / "scaled_offline.pth"
    torch.save(model.state_dict(), path)
    return str(path)


def test_tracks_through_windows_and_lost_points_stay_lost(checkpoint, device):
    tracker = CoTrackerTracker(checkpoint, device, window=4, model_resolution=(96, 128))
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (9, 96, 128, 3), dtype=np.uint8)
    points = np.array([[30.0, 40.0], [60.0, 50.0], [100.0, 20.0]], np.float32)
    tracks, visible = tracker.track(video, points)
    assert tracks.shape == (9, 3, 2) and visible.shape == (9, 3) and visible.dtype == bool
    assert np.allclose(tracks[0], points) and visible[0].all()
    assert np.isfinite(tracks).all()
    assert (np.diff(visible.astype(int), axis=0) <= 0).all()        # once lost, never back


def test_missing_weights_say_how_to_fix(tmp_path, monkeypatch):
    from engine.backends import build_tracker

    monkeypatch.setenv("DYNASKETCH_HOME", str(tmp_path))
    with pytest.raises(EngineError, match="dynasketch models download cotracker3-offline"):
        build_tracker("cotracker", torch.device("cpu"))
    assert build_tracker("auto", torch.device("cpu")).name == "lucas-kanade"
    (tmp_path / "scaled_offline.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(EngineError, match="cannot load CoTracker weights"):
        build_tracker("cotracker", torch.device("cpu"))


def test_points_given_on_later_frames_in_one_call(checkpoint, device):
    """Each point's start frame is its query time; before it the point is not seen."""
    tracker = CoTrackerTracker(checkpoint, device, window=4, model_resolution=(96, 128))
    video = np.random.default_rng(1).integers(0, 255, (4, 96, 128, 3), dtype=np.uint8)
    points = np.array([[30.0, 40.0], [60.0, 50.0], [100.0, 20.0]], np.float32)
    start = np.array([0, 1, 3])
    calls = []
    predictor = tracker.predictor
    tracker.predictor = lambda clip, queries: calls.append(queries) or predictor(clip, queries=queries)
    tracks, visible = tracker.track(video, points, start)
    assert len(calls) == 1 and calls[0][0, :, 0].tolist() == [0, 1, 3]
    assert tracks.shape == (4, 3, 2) and np.isfinite(tracks).all()
    for i, s in enumerate(start):
        assert visible[s, i] and not visible[:s, i].any()
        assert np.allclose(tracks[: s + 1, i], points[i])
    assert (np.diff(visible[1:, 1].astype(int)) <= 0).all()          # once lost, never back
    # longer than a window: start by start, through the windowed path
    calls.clear()
    tracks, visible = tracker.track(np.concatenate([video, video]), points, start)
    assert tracks.shape == (8, 3, 2) and all(visible[s, i] for i, s in enumerate(start))
    assert len(calls) > 1 and all((c[0, :, 0] == 0).all() for c in calls)
