"""The paper path as CLIPasso and DynaSketch define it: each test pins one part of the
reference's behaviour against its definition, computed here with the libraries the reference
uses (scipy, scikit-image, torchvision) where it uses them. (No CLIP weights can be had here,
so faithfulness is shown part by part, not by the look of a result.)"""
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2gray
from skimage.filters import threshold_otsu
from torchvision import transforms

from engine import devices, imageops
from engine.initialise import random_strokes
from engine.losses import track_distance_loss, triplet_shape_loss
from engine.neural.clip_guidance import CLIP_MEAN, CLIP_STD, random_homographies, view_homographies, \
    view_parameters, warp
from engine.neural.clip_saliency import positive_softmax
from engine.optimise import adam


def smooth_image(seed: int = 0, size: int = 224) -> np.ndarray:
    """A photo-like RGB image in [0, 1]: blurred noise with a few hard edges."""
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.random((size, size, 3)), (6, 6, 0))
    img = (img - img.min()) / (img.max() - img.min())
    img[60:150, 80:90] *= 0.2
    img[140:150, 50:180] = 0.05
    return img


def reference_xdog(image: np.ndarray) -> np.ndarray:
    """CLIPasso's XDoG_ (gamma 0.98, phi 200, eps -0.1, sigma 0.8, k 10, binarised at Otsu's
    threshold), as its painter applies it to the CLIP-normalised frame; 1 on lines."""
    im = rgb2gray(image)
    d = gaussian_filter(im, 0.8) - 0.98 * gaussian_filter(im, 8.0)
    d = (d < -0.1) * 1.0 + (d >= -0.1) * (1.0 + np.tanh(200 * d))
    d -= d.min()
    d /= d.max()
    return 1.0 - (d >= threshold_otsu(d)).astype(np.float64)


def clip_normalised(image: np.ndarray) -> np.ndarray:
    return (image - np.array(CLIP_MEAN)) / np.array(CLIP_STD)


def test_xdog_lines_are_clipassos():
    for seed in range(3):
        img = clip_normalised(smooth_image(seed))
        ours = imageops.clipasso_lines(torch.from_numpy(img).permute(2, 0, 1)[None].float())[0].numpy()
        reference = reference_xdog(img)
        assert 0.02 < reference.mean() < 0.6                       # lines, not all or nothing
        assert (ours == reference).mean() > 0.999                  # float32 vs float64 at the cut


def test_the_start_samples_only_where_the_score_is_above_zero():
    """CLIPasso's softmax (T = 0.3) runs over the pixels with a positive score; the others
    have probability 0 (here every in-mask pixel used to keep weight e^0)."""
    score = torch.zeros(2, 20, 30)
    score[0, 5:8, 4:20] = torch.linspace(0.1, 1.0, 16)
    score[1, 10, 10] = 0.5
    prob = positive_softmax(score, 0.3)
    assert torch.allclose(prob.flatten(1).sum(1), torch.ones(2))
    assert (prob[score == 0] == 0).all()
    positive = score[0][score[0] > 0]
    expected = np.exp(positive.numpy() / 0.3) / np.exp(positive.numpy() / 0.3).sum()
    assert np.allclose(prob[0][score[0] > 0].numpy(), expected, atol=1e-7)
    assert prob[1, 10, 10] == pytest.approx(1.0)
    flat = positive_softmax(torch.zeros(1, 4, 5), 0.3)            # nothing salient: uniform
    assert torch.allclose(flat, torch.full_like(flat, 1 / 20))


def test_strokes_grow_as_clipassos():
    """Each control point is the previous plus ``0.05 * (rand - 0.5) * 224``: at most 5.6 px
    a step on a 224 canvas, uniform (standard deviation 0.05 * 224 / sqrt(12))."""
    starts = torch.full((4000, 2), 112.0)
    pts = random_strokes(starts, 1, 0.05 * 224, torch.Generator().manual_seed(0))
    steps = pts[:, 1:] - pts[:, :-1]
    assert steps.abs().max() <= 5.6 and steps.abs().max() > 5.5
    assert steps.std().item() == pytest.approx(0.05 * 224 / math.sqrt(12), rel=0.02)
    assert steps.mean().abs() < 0.05


def torchvision_view(image: torch.Tensor, endpoints, offset, crop: int) -> torch.Tensor:
    """CLIPasso's augmentation, torchvision's own functions, for given parameters."""
    size = image.shape[-1]
    start = [[0, 0], [size - 1, 0], [size - 1, size - 1], [0, size - 1]]
    shrunk = TF.perspective(image, start, endpoints, interpolation=TF.InterpolationMode.BILINEAR, fill=0)
    return TF.resized_crop(shrunk, int(offset[1]), int(offset[0]), crop, crop, [size, size],
                           interpolation=TF.InterpolationMode.BILINEAR, antialias=True)


def test_a_view_is_torchvisions_perspective_then_resized_crop():
    image = torch.from_numpy(smooth_image(1)).permute(2, 0, 1)[None].float()
    endpoints, offsets, crop = view_parameters(6, torch.Generator().manual_seed(3), torch.device("cpu"))
    assert crop == 200                                      # round(sqrt(0.8) * 224)
    ours = warp(image.expand(6, -1, -1, -1), view_homographies(endpoints, offsets, crop))
    for k in range(6):
        theirs = torchvision_view(image, endpoints[k].long().tolist(), offsets[k].tolist(), crop)
        inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))   # away from the fill's edge
        assert (ours[k:k + 1] - theirs)[inner].abs().mean() < 0.01
        assert (ours[k:k + 1] - theirs).abs().mean() < 0.02


def test_views_shrink_the_content_with_black_fill_as_torchvision_draws_them():
    """Over many draws: each corner moves inwards by a whole number of pixels in [0, 56] per
    axis (distortion 0.5 of half of 224), uniformly; crops sit at [0, 24]; and the black
    share of a white image's views is torchvision's (the old views zoomed in, border-filled)."""
    n = 3000
    endpoints, offsets, crop = view_parameters(n, torch.Generator().manual_seed(0), torch.device("cpu"))
    far = torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=torch.bool)   # right / bottom sides
    moved = torch.where(far, 223 - endpoints, endpoints)                   # inwards, per axis
    assert moved.min() == 0 and moved.max() == 56
    assert moved.float().mean().item() == pytest.approx(28, abs=0.5)
    assert torch.equal(moved, moved.round())
    assert offsets.min() == 0 and offsets.max() == 24

    white = torch.ones(1, 1, 224, 224)
    torch.manual_seed(0)
    augment = transforms.Compose([transforms.RandomPerspective(fill=0, p=1.0, distortion_scale=0.5),
                                  transforms.RandomResizedCrop(224, scale=(0.8, 0.8), ratio=(1.0, 1.0))])
    theirs = torch.tensor([(augment(white[0]) < 0.5).float().mean().item() for _ in range(300)])
    ours = (warp(white.expand(300, -1, -1, -1),
                 random_homographies(300, torch.Generator().manual_seed(1), torch.device("cpu"))) < 0.5)
    ours = ours.float().mean((1, 2, 3))
    assert theirs.mean() > 0.05                                           # views do show black
    assert ours.mean().item() == pytest.approx(theirs.mean().item(), abs=0.01)
    assert ours.std().item() == pytest.approx(theirs.std().item(), rel=0.25)


def test_best_iterate_is_kept_on_the_rating():
    """``adam`` with ``evaluate`` rates the iterate every 10 steps and at the end and returns
    each row's best rated points: here the loss runs past the rating's optimum."""
    start = torch.zeros(2, 1, 1, 2)
    goal = torch.tensor([5.0, 30.0]).view(2, 1, 1, 1)
    rated = []

    def evaluate(p):
        rated.append(p[:, 0, 0, 0].clone())
        return (p[:, 0, 0, 0] - goal[:, 0, 0, 0]).abs()

    points, rating = adam(start, 50, 1.0, lambda p: -p[..., 0].sum((1, 2)), lambda: False,
                          evaluate=evaluate)
    rated = torch.stack(rated)                                   # (ratings, 2)
    assert len(rated) == 6                                       # steps 0, 10, ..., 40 and the end
    best = (rated - goal.view(1, 2)).abs().argmin(0)
    assert torch.equal(points[:, 0, 0, 0], rated[best, [0, 1]])
    assert torch.equal(rating, (rated[best, [0, 1]] - goal.view(2)).abs())
    assert points[0, 0, 0, 0] < 15 < points[1, 0, 0, 0]          # each row its own best


def test_the_reference_temporal_terms():
    """DynaSketch's balance with CLIP: the track term is the mean distance (not squared), the
    shape term the change of the three distances within every run of three points."""
    pts = torch.zeros(1, 2, 8, 2)
    pts[..., 0] = torch.arange(8.0)
    tracks = pts + torch.tensor([3.0, 4.0])
    visible = torch.ones(1, 2, 8, dtype=torch.bool)
    visible[0, 1] = False                                          # unseen points do not count
    assert track_distance_loss(pts, tracks, visible).item() == pytest.approx(5.0)
    assert triplet_shape_loss(pts, pts + 7.0).item() == pytest.approx(0.0, abs=1e-5)   # moved
    stretched = pts * 2                                            # distances 1, 2, 1 become 2, 4, 2
    assert triplet_shape_loss(stretched, pts).item() == pytest.approx(4 / 3, rel=1e-5)


def test_auto_device_tries_cuda_then_apples_gpu_then_the_cpu():
    assert devices.pick_device("auto", cuda=True, mps=True).type == "cuda"
    assert devices.pick_device("auto", cuda=False, mps=True).type == "mps"
    assert devices.pick_device("auto", cuda=False, mps=False).type == "cpu"
    assert devices.pick_device("mps", cuda=False, mps=True).type == "mps"
    with pytest.raises(Exception, match="--device mps: no usable Apple GPU"):
        devices.pick_device("mps", cuda=False, mps=False)
    with pytest.raises(Exception, match="choose auto, cpu, cuda, mps"):
        devices.pick_device("tpu")
    assert devices.encoder_dtype(torch.device("cuda")) == torch.bfloat16
    assert devices.encoder_dtype(torch.device("mps")) == torch.float32   # bf16 needs macOS 14
    assert devices.encoder_dtype(torch.device("cpu")) == torch.float32


def test_mps_fallback_is_set_on_macos_before_torch_is_imported():
    env = {}
    devices.prepare_environment(env, "darwin")
    assert env == {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}
    env = {"PYTORCH_ENABLE_MPS_FALLBACK": "0"}                     # the user's own choice stays
    devices.prepare_environment(env, "darwin")
    assert env["PYTORCH_ENABLE_MPS_FALLBACK"] == "0"
    env = {}
    devices.prepare_environment(env, "linux")
    assert env == {}
    import subprocess
    import sys
    # the command's module loads without torch, so the variable is set before torch comes
    code = "import sys, engine.cli; assert 'torch' not in sys.modules, 'torch imported early'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0


def test_a_sketch_sends_no_float64_tensor_to_its_device(tmp_path):
    """Apple's GPUs have no float64: every tensor the engine makes on, or moves to, the run's
    device during a whole sketch (decode, mask, track, start, optimise, export) is float32 or
    an integer/bool type. Checked on the CPU through torch's function hook: any call naming a
    device (``.to(device)``, ``torch.zeros(..., device=)``, ...) that gives float64."""
    import traceback

    from torch.overrides import TorchFunctionMode

    from engine.pipeline import Job, run_sketch
    from engine.progress import Progress
    from engine.sample import write_sample
    from engine.settings import Settings

    class Float64OnDevice(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.found = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            named = "device" in kwargs or (getattr(func, "__name__", "") == "to" and any(
                isinstance(a, (torch.device, str)) or isinstance(a, torch.Tensor) for a in args[1:]))
            if named and isinstance(out, torch.Tensor) and out.dtype == torch.float64:
                ours = [f for f in traceback.extract_stack() if "/engine/" in f.filename]
                if ours:
                    self.found.append(f"{ours[-1].filename}:{ours[-1].lineno} {ours[-1].name}")
            return out

    clip, mask = str(tmp_path / "walk.mp4"), str(tmp_path / "walk.mask.mp4")
    write_sample(clip, mask, frames=5, width=160, height=120)
    settings = Settings.from_preset("fast", mask=mask, strokes=4, keyframe_steps=6, frame_steps=3,
                                    reinit_steps=3, window=2)
    mode = Float64OnDevice()
    with mode:
        run_sketch(Job(clip, str(tmp_path / "out"), settings, preview=False), Progress())
    assert not mode.found, sorted(set(mode.found))



def test_doctor_reports_apples_gpu():
    from engine.doctor import diagnose

    usable, why = diagnose()["devices"]["mps"]
    assert usable == devices.mps_available()
    assert why and "\n" not in why
    if not torch.backends.mps.is_built():
        assert "no MPS support" in why
