"""The differentiable rasterizer against skia (an independent renderer) and finite differences."""
import numpy as np
import pytest
import torch

from engine.rasterizer import SplatRasterizer


def random_strokes(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(n, 1, 2, generator=g) * size * 0.7 + size * 0.15
    return (start + torch.randn(n, 4, 2, generator=g) * size * 0.12).double()


def skia_ink(control: np.ndarray, width: np.ndarray, opacity: np.ndarray, size: int) -> np.ndarray:
    skia = pytest.importorskip("skia")
    surface = skia.Surface(size, size)
    canvas = surface.getCanvas()
    canvas.clear(skia.ColorWHITE)
    for pts, w, a in zip(control, width, opacity):
        path = skia.Path()
        path.moveTo(*pts[0])
        path.cubicTo(*pts[1], *pts[2], *pts[3])
        paint = skia.Paint(AntiAlias=True, Style=skia.Paint.kStroke_Style, StrokeWidth=float(w),
                           StrokeCap=skia.Paint.kRound_Cap, Color=skia.Color4f(0, 0, 0, float(a)))
        canvas.drawPath(path, paint)
    rgba = surface.makeImageSnapshot().toarray()
    return 1.0 - rgba[..., 0].astype(np.float64) / 255.0


@pytest.mark.parametrize("seed,width", [(0, 1.5), (1, 3.0), (2, 6.0)])
def test_matches_skia_on_random_strokes(seed, width):
    size, n = 128, 6
    control = random_strokes(n, size, seed)
    widths = torch.full((1, n), width, dtype=torch.float64)
    ours = SplatRasterizer()(control[None], widths, torch.ones(1, n, dtype=torch.float64), size)[0, 0].numpy()
    ref = skia_ink(control.numpy(), widths[0].numpy(), np.ones(n), size)
    assert ref.sum() > 50                               # the strokes are visible at all
    assert np.abs(ours - ref).sum() / ref.sum() < 0.12  # the same ink, up to anti-aliasing
    inter = ((ours > 0.5) & (ref > 0.5)).sum()
    union = ((ours > 0.5) | (ref > 0.5)).sum()
    assert inter / union > 0.85


def test_opacity_matches_skia_for_separate_strokes():
    size = 96
    control = torch.tensor([[[10, 20], [30, 10], [60, 30], [85, 20]],
                            [[10, 70], [30, 60], [60, 80], [85, 70]]], dtype=torch.float64)
    opacity = torch.tensor([[0.3, 0.8]], dtype=torch.float64)
    widths = torch.full((1, 2), 4.0, dtype=torch.float64)
    ours = SplatRasterizer()(control[None], widths, opacity, size)[0, 0].numpy()
    ref = skia_ink(control.numpy(), widths[0].numpy(), opacity[0].numpy(), size)
    for rows in (slice(0, 45), slice(45, 96)):          # each stroke's darkness
        assert ours[rows].max() == pytest.approx(ref[rows].max(), abs=0.03)
        assert ours[rows].sum() == pytest.approx(ref[rows].sum(), rel=0.1)


def test_batched_over_frames_and_strokes():
    size = 64
    a, b = random_strokes(3, size, 5), random_strokes(3, size, 6)
    r = SplatRasterizer()
    both = r(torch.stack([a, b]), torch.full((2, 3), 2.0, dtype=torch.float64),
             torch.ones(2, 3, dtype=torch.float64), size)
    alone = r(b[None], torch.full((1, 3), 2.0, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64), size)
    assert both.shape == (2, 1, size, size)
    assert torch.allclose(both[1], alone[0], atol=0.01)   # piece count follows the longest stroke
    assert not torch.allclose(both[0], both[1])


def test_gradients_match_finite_differences():
    size = 48
    r = SplatRasterizer()
    control = random_strokes(2, size, 3)[None]
    width = torch.tensor([[2.5, 3.5]], dtype=torch.float64)
    opacity = torch.tensor([[0.7, 0.9]], dtype=torch.float64)
    weights = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def f(c, w, o):
        return (r(c, w, o, size) * weights).sum()

    c, w, o = (x.clone().requires_grad_(True) for x in (control, width, opacity))
    f(c, w, o).backward()
    eps = 1e-4
    for tensor, grad, index in [(control, c.grad, (0, 0, 1, 0)), (control, c.grad, (0, 1, 2, 1)),
                                (control, c.grad, (0, 1, 3, 0)), (width, w.grad, (0, 0)),
                                (width, w.grad, (0, 1)), (opacity, o.grad, (0, 1))]:
        plus, minus = tensor.clone(), tensor.clone()
        plus[index] += eps
        minus[index] -= eps
        args = lambda t: [t if x is tensor else x for x in (control, width, opacity)]  # noqa: E731
        numeric = (f(*args(plus)) - f(*args(minus))) / (2 * eps)
        assert grad[index].item() == pytest.approx(numeric.item(), rel=1e-3, abs=1e-5)
        assert abs(numeric.item()) > 1e-3                # the check is not vacuous


def test_runs_on_cuda_like_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    control = random_strokes(4, 64, 0).float()[None]
    args = (torch.full((1, 4), 2.0), torch.ones(1, 4), 64)
    cpu = SplatRasterizer()(control, *args)
    gpu = SplatRasterizer()(control.cuda(), args[0].cuda(), args[1].cuda(), 64).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4)


def test_a_kept_plan_draws_strokes_that_grew_within_its_headroom_like_skia():
    """On a GPU the pieces and window are planned every few calls, not measured per call
    (that would stall the host each step): strokes may grow by the headroom meanwhile."""
    size, n, width = 128, 6, 2.0
    control = random_strokes(n, size, 4)
    widths = torch.full((1, n), width, dtype=torch.float64)
    ones = torch.ones(1, n, dtype=torch.float64)
    r = SplatRasterizer(replan_every=3, headroom=1.25)
    first = r(control[None], widths, ones, size)
    plan = r.plans[(tuple(control[None].shape), size)][0]
    centre = control.mean(1, keepdim=True)
    grown = centre + (control - centre) * 1.2
    for strokes in (control, grown):
        ours = r(strokes[None], widths, ones, size)[0, 0].numpy()
        ref = skia_ink(strokes.numpy(), widths[0].numpy(), np.ones(n), size)
        assert np.abs(ours - ref).sum() / ref.sum() < 0.12
        inter, union = ((ours > 0.5) & (ref > 0.5)).sum(), ((ours > 0.5) | (ref > 0.5)).sum()
        assert inter / union > 0.85
    assert r.plans[(tuple(control[None].shape), size)][0] == plan       # no new plan yet
    assert torch.allclose(first, SplatRasterizer()(control[None], widths, ones, size), atol=0.05)
    r(grown[None] * 1.5, widths, ones, size)                           # the 4th call plans again
    assert r.plans[(tuple(control[None].shape), size)][0].pieces > plan.pieces


def test_evenly_spaced_parameters_given_as_a_count_match_explicit_ones():
    """The rasterizer and the tracked points ask for evenly spaced curve points by count (their
    weights are made once per device and dtype); they are the points of the explicit form."""
    from engine import bezier

    for dtype in (torch.float32, torch.float64):
        control = torch.rand(2, 3, 7, 2, dtype=dtype) * 100
        for count in (2, 5, 9):
            u = torch.linspace(0, 1, count, dtype=dtype)
            assert torch.equal(bezier.evaluate(control, count), bezier.evaluate(control, u))
            assert torch.equal(bezier.evaluate_along(control, count), bezier.evaluate_along(control, u))
        assert bezier.evaluate_along(control, 3).dtype == dtype
