"""CLIP guidance on open_clip's image tower, loaded from a small randomly initialised ResNet CLIP
of the RN101 family saved as OpenAI releases CLIP (no weights can be downloaded here)."""
import copy
import dataclasses
import hashlib
import json

import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from bench.checkpoints import SMALL_TEXT, clip_model, save_openai_clip  # noqa: E402
from engine import models  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from engine.neural.clip_guidance import ClipGuidance  # noqa: E402
from engine.rasterizer import SplatRasterizer  # noqa: E402


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A ModifiedResNet CLIP (RN101's architecture, layers 1-1-1-1, width 16) written as OpenAI
    releases CLIP: a TorchScript archive with fp16 weights."""
    model = clip_model(dict(layers=(1, 1, 1, 1), width=16), embed_dim=32, text=SMALL_TEXT)
    return save_openai_clip(model, str(tmp_path_factory.mktemp("clip") / "RN101.pt"))


@pytest.mark.parametrize("name, vision", [("clip-rn101", dict(layers=(1, 2, 1, 1), width=16)),
                                          ("clip-vit-b-32", dict(layers=2, width=64, patch_size=32))])
def test_reads_openais_torchscript_release_and_state_dicts_alike(name, vision, tmp_path):
    """OpenAI's checkpoints are TorchScript archives of the whole CLIP in fp16; a state dict in
    their layout is read too. Either way only the image tower is built, with the file's weights."""
    from engine.neural.clip_guidance import load_clip_visual

    model = clip_model(vision, embed_dim=32, text=SMALL_TEXT)
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    save_openai_clip(model, str(tmp_path / "release.pt"))
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        want = model.visual(images)
        want_fp16 = copy.deepcopy(model.visual).half().float()(images)     # the release's rounding
        for file, expected in (("plain.pt", want), ("release.pt", want_fp16)):
            visual = load_clip_visual(str(tmp_path / file), torch.device("cpu"), name)
            assert type(visual) is type(model.visual)
            assert sum(p.numel() for p in visual.parameters()) == sum(p.numel() for p in model.visual.parameters())
            assert torch.allclose(visual(images), expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(want, want_fp16, rtol=1e-6, atol=0)              # the two files differ
    with pytest.raises(EngineError, match="not the CLIP encoder"):
        load_clip_visual(str(tmp_path / "release.pt"), torch.device("cpu"),
                         "clip-rn101" if name != "clip-rn101" else "clip-vit-b-32")


@pytest.mark.parametrize("vision", [dict(layers=(1, 2, 1, 1), width=16), dict(layers=2, width=64, patch_size=32)])
def test_a_release_is_read_without_torchscript_as_torchscript_reads_it(vision, tmp_path, monkeypatch):
    """``torch.jit.load`` is deprecated: the engine reads a release's weights from the archive's
    pickle itself, the very tensors TorchScript gives (names, dtypes, values, strides)."""
    import warnings

    from engine.neural import torchscript_archive
    from engine.neural.clip_guidance import read_clip_checkpoint

    path = save_openai_clip(clip_model(vision, embed_dim=32, text=SMALL_TEXT), str(tmp_path / "release.pt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        want = torch.jit.load(path, map_location="cpu").state_dict()
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("TorchScript was asked"))
    got = read_clip_checkpoint(path)
    assert torchscript_archive.is_torchscript(path) and got.keys() == want.keys()
    for key, tensor in want.items():
        assert got[key].dtype == tensor.dtype and got[key].stride() == tensor.stride()
        assert torch.equal(got[key], tensor), key
    assert {t.dtype for t in got.values()} >= {torch.float16}                 # the release's fp16


def test_an_archive_naming_something_unknown_goes_to_torchscript_and_code_never_runs(tmp_path, monkeypatch):
    """Something the reader does not know in a real archive is left to TorchScript; an archive
    whose pickle asks for Python code is refused with the clear error, and the code never runs."""
    import pickle
    import zipfile

    from engine.neural import clip_guidance, torchscript_archive

    release = save_openai_clip(clip_model(dict(layers=(1, 1, 1, 1), width=16), embed_dim=32, text=SMALL_TEXT),
                               str(tmp_path / "release.pt"))
    monkeypatch.delitem(torchscript_archive._GLOBALS, ("torch._utils", "_rebuild_tensor_v2"))
    with pytest.raises(torchscript_archive.UnknownContent):
        torchscript_archive.read_tensors(release)
    assert clip_guidance.load_clip_visual(release, torch.device("cpu")).layer4 is not None   # via TorchScript

    class RunsCode:
        def __reduce__(self):
            return (open, (str(tmp_path / "ran"), "w"))

    crafted = tmp_path / "crafted.pt"
    with zipfile.ZipFile(crafted, "w") as archive:
        archive.writestr("crafted/data.pkl", pickle.dumps(RunsCode(), protocol=2))
        archive.writestr("crafted/constants.pkl", pickle.dumps((), protocol=2))
    with pytest.raises(EngineError, match="cannot load CLIP weights from .*crafted.pt.*dynasketch models download"):
        clip_guidance.load_clip_visual(str(crafted), torch.device("cpu"))
    assert not (tmp_path / "ran").exists()


def frame_with_shape():
    img = torch.ones(1, 3, 224, 224)
    img[..., 60:160, 80:90] = 0.1
    img[..., 150:160, 60:170] = 0.2
    return img


def test_loads_through_open_clip_and_reaches_layers_by_name(tiny_clip, device):
    guidance = ClipGuidance(tiny_clip, device)
    f2, f3, emb = guidance.features(torch.rand(2, 3, 224, 224, device=device))
    assert f2.shape[0] == f3.shape[0] == emb.shape[0] == 2
    # layer2 and layer3 of a width-16 ResNet, a row per image: 128 x 28 x 28 and 256 x 14 x 14
    assert (f2.shape[1], f3.shape[1], emb.shape[1]) == (128 * 28 * 28, 256 * 14 * 14, 32)


def test_loss_is_zero_for_the_frame_itself_and_has_gradients(tiny_clip, device):
    guidance = ClipGuidance(tiny_clip, device, views=2)
    frame = frame_with_shape().to(device)
    target = guidance.prepare(frame, None)
    assert guidance(frame, target).item() == pytest.approx(0.0, abs=1e-5)
    r = SplatRasterizer()
    ctrl = torch.tensor([[[[85.0, 60.0], [85.0, 90.0], [85.0, 130.0], [85.0, 160.0]]]], device=device,
                        requires_grad=True)
    sketch = (1 - r(ctrl, torch.tensor([[3.0]], device=device), torch.ones(1, 1, device=device),
                    224)).expand(-1, 3, -1, -1)
    loss = guidance(sketch, target)
    assert loss.shape == (1,) and loss.item() > 0
    loss.sum().backward()
    assert ctrl.grad.abs().sum() > 0


def test_a_keyframes_seeds_share_their_frame_and_its_warps(tiny_clip, device):
    """A keyframe's seeds sketch one frame (``prepare(..., copies=3)``): a step encodes the
    frame's views once, not once per seed, and each seed sees exactly what a lone sketch of
    that frame would, fresh warps every step (so the seeds are compared on the same views)."""
    frame = frame_with_shape().to(device)
    sketches = torch.stack([frame[0], torch.rand_like(frame[0]), frame[0].flip(-1)])
    shared = ClipGuidance(tiny_clip, device, views=4, graphs=False, seed=5)
    batches, encode = [], shared.encoder
    shared.encoder = lambda x: (batches.append(x.shape[0]), encode(x))[1]
    together = shared(sketches, shared.prepare(frame, None, copies=3))
    assert batches == [1, 4, 15]            # the frame; then its 4 views, and 3 sketches + 12 views
    assert together[0].item() == pytest.approx(0.0, abs=1e-5) and together[1:].min() > 0
    for j in range(3):
        alone = ClipGuidance(tiny_clip, device, views=4, graphs=False, seed=5)
        assert alone(sketches[j:j + 1], alone.prepare(frame, None)).item() == pytest.approx(
            together[j].item(), rel=1e-4, abs=1e-6)
    banked = ClipGuidance(tiny_clip, device, views=4, graphs=False, view_bank=8)
    target = banked.prepare(frame, None, copies=3)
    assert target.bank[0].shape[:2] == (1, 8)                           # one bank for the frame
    loss = banked(sketches, target)
    assert loss[0].item() == pytest.approx(0.0, abs=1e-5) and loss[1:].min() > 0


def test_view_bank_encodes_the_frames_views_once_and_warps_each_sketch_like_its_frame(tiny_clip, device):
    """With a view bank (DYNASKETCH_VIEW_BANK) ``prepare`` encodes each frame under its own
    warps once; a step draws some of them per sketch and encodes only the sketches. Row by
    row the sketch gets its frame's warp: a sketch equal to its frame scores zero in a batch
    of different frames, and against the other frame it does not."""
    guidance = ClipGuidance(tiny_clip, device, views=2, view_bank=5, graphs=False)
    assert guidance.view_bank == 6                                  # a multiple of the views
    frames = torch.cat([frame_with_shape(), frame_with_shape().flip(-1)]).to(device)
    target = guidance.prepare(frames, None)
    assert target.warps.shape == (2, 6, 3, 3) and target.bank[0].shape[:2] == (2, 6)
    batches = []
    encode = guidance.encoder
    guidance.encoder = lambda x: batches.append(x.shape[0]) or encode(x)
    same = max(guidance(frames, target).abs().max().item() for _ in range(3))
    assert batches == [2 * 3] * 3                   # one encoder call a step: sketches + views
    assert (guidance(frames.flip(0), target) > max(100 * same, 1e-7)).all()   # the tiny CLIP's scale
    sketch = frames.clone().requires_grad_(True)
    guidance(torch.rot90(sketch, 1, (2, 3)), target).sum().backward()
    assert sketch.grad.abs().sum() > 0


def test_view_bank_is_set_from_the_environment(tiny_clip, monkeypatch):
    monkeypatch.setenv("DYNASKETCH_VIEW_BANK", "64")
    assert ClipGuidance(tiny_clip, torch.device("cpu")).view_bank == 64
    monkeypatch.setenv("DYNASKETCH_VIEW_BANK", "lots")
    with pytest.raises(EngineError, match="DYNASKETCH_VIEW_BANK='lots': set it to a number"):
        ClipGuidance(tiny_clip, torch.device("cpu"))
    monkeypatch.delenv("DYNASKETCH_VIEW_BANK")
    assert ClipGuidance(tiny_clip, torch.device("cpu")).view_bank == 0    # off by default


def test_missing_or_corrupt_weights_say_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNASKETCH_HOME", str(tmp_path))
    from engine.backends import build_guidance

    with pytest.raises(EngineError, match="dynasketch models download clip-rn101"):
        build_guidance("clip", torch.device("cpu"))
    assert build_guidance("auto", torch.device("cpu")).name == "chamfer"     # auto falls back
    assert build_guidance("auto", torch.device("cuda")).name == "chamfer"    # (no weights)
    (tmp_path / "RN101.pt").write_bytes(b"garbage")
    with pytest.raises(EngineError, match="wrong checksum"):
        build_guidance("clip", torch.device("cpu"))


def test_sketch_run_with_clip_guidance(tiny_clip, tmp_path, monkeypatch):
    """The whole pipeline with CLIP guidance (the first frame from 2 seeds sharing it), weights
    from the model folder."""
    from engine.pipeline import Job, run_sketch
    from engine.progress import Progress
    from engine.sample import write_sample
    from engine.settings import Settings

    home = tmp_path / "models"
    home.mkdir()
    (home / "RN101.pt").write_bytes(open(tiny_clip, "rb").read())
    digest = hashlib.sha256((home / "RN101.pt").read_bytes()).hexdigest()
    monkeypatch.setenv("DYNASKETCH_HOME", str(home))
    monkeypatch.setitem(models.MODELS, "clip-rn101",
                        dataclasses.replace(models.MODELS["clip-rn101"], sha256=digest))
    clip, mask = str(tmp_path / "walk.mp4"), str(tmp_path / "walk.mask.mp4")
    write_sample(clip, mask, frames=4, width=160, height=120)
    settings = Settings.from_preset("fast", mask=mask, strokes=4, seeds=2, keyframe_steps=4,
                                    frame_steps=2, reinit_steps=2, guidance="clip")
    out = tmp_path / "out"
    run_sketch(Job(clip, str(out), settings, preview=False), Progress())
    sketch = json.loads((out / "sketch.json").read_text())
    assert sketch["settings"]["backends"]["guidance"] == "clip"
    assert len(sketch["frames"]) == 4 and sketch["complete"]


@pytest.mark.parametrize("channels_last", [False, True], ids=["channel-first", "channels-last"])
def test_the_encoders_rewrites_keep_its_features_and_gradients(tiny_clip, channels_last):
    """Batch norms folded into the convolutions, average pools through ``AveragePool2x2`` (a mean
    over a view for channels-last maps), layer2 and layer3 as rows in memory order (channels-last
    is CUDA's layout, forced here on the CPU): the same features and the same gradients as
    open_clip's encoder."""
    from engine.neural.clip_guidance import load_clip_visual

    plain = load_clip_visual(tiny_clip, torch.device("cpu"))
    for m in plain.modules():                     # running statistics that matter
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    guidance = ClipGuidance(None, torch.device("cpu"), visual=copy.deepcopy(plain), channels_last=channels_last)
    kinds = {type(m).__name__ for m in guidance.visual.modules()}
    assert "BatchNorm2d" not in kinds and "AvgPool2d" not in kinds and "AveragePool2x2" in kinds
    images = torch.rand(2, 3, 224, 224)
    order = (0, 2, 3, 1) if channels_last else (0, 1, 2, 3)
    grads = []
    for encoder in ("plain", "rewritten"):
        x = images.clone().requires_grad_(True)
        if encoder == "plain":
            f2 = plain.layer2(plain.layer1(plain.stem((x - guidance.mean) / guidance.std)))
            f3 = plain.layer3(f2)
            features = (f2.permute(order).flatten(1), f3.permute(order).flatten(1), plain.attnpool(plain.layer4(f3)))
            want = [f.detach() for f in features]
        else:
            features = guidance.features(x)
            for a, b in zip(features, want):
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
        sum((f * torch.linspace(-1, 1, f.shape[1])).sum() for f in features).backward()
        grads.append(x.grad)
    assert ((grads[1] - grads[0]).norm() / grads[0].norm()) < 1e-4


def test_average_pool_2x2_is_avg_pool2d_in_the_inputs_own_layout():
    from engine.neural.clip_guidance import average_pool_2x2

    for dtype, tol in ((torch.float32, 1e-6), (torch.bfloat16, 1e-2)):
        for layout in (torch.contiguous_format, torch.channels_last):
            for size in ((6, 8), (7, 9)):                          # odd sizes: floor, as AvgPool2d
                x = torch.randn(2, 5, *size, dtype=dtype).contiguous(memory_format=layout)
                a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
                got, want = average_pool_2x2(a), torch.nn.functional.avg_pool2d(b, 2)
                grad = torch.randn_like(want)
                got.backward(grad)
                want.backward(grad)
                assert torch.allclose(got, want, atol=tol) and torch.allclose(a.grad, b.grad, atol=tol)
                assert got.is_contiguous(memory_format=layout) and a.grad.is_contiguous(memory_format=layout)


def test_a_channels_last_loss_step_keeps_the_feature_maps_in_one_layout(tiny_clip):
    """On CUDA the encoder runs channels-last. A kernel that meets feature maps in both layouts
    (or copies between them) runs the slow generic path, and ATen's average pools were a
    quarter of the encoder's time in the H100 profile. Checked through the dispatcher with
    channels-last forced on the CPU: in a loss step (the sketches and their views, forward
    and backward), no op on the trunk's feature maps mixes layouts or converts between them,
    and no average pool runs: with fresh views and with a view bank."""
    from torch.utils._python_dispatch import TorchDispatchMode

    def layout(t):
        """The layout of a feature map of the trunk, from the stem's 112 x 112 to layer3's 14 x 14
        (layer4's 7 x 7 map goes to open_clip's attention pool, which reads it in its own order)."""
        if t.dim() != 4 or t.shape[1] <= 3 or t.shape[-1] != t.shape[-2] or t.shape[-1] < 14:
            return None
        if t.is_contiguous(memory_format=torch.channels_last):
            return "channels-last"
        return "channel-first" if t.is_contiguous() else "strided"

    class Layouts(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.mixed, self.pools = [], []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = str(func.overloadpacket)
            if "avg_pool" in name:
                self.pools.append(name)
            outs = out if isinstance(out, (tuple, list)) else [out]
            aliases = any(r.alias_info is not None for r in func._schema.returns)   # views, in place
            tensors = [t for t in (*args, *([] if aliases else outs)) if isinstance(t, torch.Tensor)]
            seen = {layout(t) for t in tensors} - {None}
            if len(seen) > 1:
                self.mixed.append((name, [tuple(t.shape) for t in tensors], sorted(seen)))
            return out

    r = SplatRasterizer()
    frames = frame_with_shape().repeat(2, 1, 1, 1)
    for bank in (0, 8):
        guidance = ClipGuidance(tiny_clip, torch.device("cpu"), views=2, channels_last=True, view_bank=bank)
        target = guidance.prepare(frames, None)
        ctrl = torch.tensor([[[[85.0, 60.0], [85.0, 90.0], [90.0, 130.0], [85.0, 160.0]]]]).repeat(2, 1, 1, 1)
        sketch = (1 - r(ctrl.requires_grad_(True), torch.full((2, 1), 3.0), torch.ones(2, 1), 224))
        check = Layouts()
        with check:
            guidance(sketch.expand(-1, 3, -1, -1), target).sum().backward()
        assert ctrl.grad.abs().sum() > 0
        assert check.pools == [] and check.mixed == [], (bank, check.pools, check.mixed[:5])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("options", [{}, {"compiled": True}, {"view_bank": 8}],
                         ids=["graphs", "graphs-and-compile", "graphs-and-view-bank"])
def test_cuda_graphs_give_the_eager_loss_and_gradients(tiny_clip, options):
    """CUDA graphs, alone and with each experiment under them as a run has it (torch.compile,
    DYNASKETCH_COMPILE=1; the view bank, DYNASKETCH_VIEW_BANK), over two batch sizes (one
    compilation with a symbolic batch serves both), give the eager encoder's loss and
    gradients."""
    cuda = torch.device("cuda")
    eager = ClipGuidance(tiny_clip, cuda, views=4, graphs=False, view_bank=options.get("view_bank"))
    fast = ClipGuidance(tiny_clip, cuda, views=4, graphs=True, **options)
    r = SplatRasterizer()
    for step, batch in enumerate((2, 2, 2, 3, 3, 3)):    # each shape is captured, then replayed
        frames = frame_with_shape().repeat(batch, 1, 1, 1).to(cuda)
        results = []
        for guidance in (eager, fast):
            guidance.generator.manual_seed(step)
            ctrl = torch.tensor([[[[85.0, 60.0], [85.0, 90.0], [85.0 + step, 130.0], [85.0, 160.0]]]],
                                device=cuda).repeat(batch, 1, 1, 1).requires_grad_(True)
            sketch = (1 - r(ctrl, torch.full((batch, 1), 3.0, device=cuda), torch.ones(batch, 1, device=cuda),
                            224)).expand(-1, 3, -1, -1)
            loss = guidance(sketch, guidance.prepare(frames, None))
            loss.sum().backward()
            results.append((loss.detach(), ctrl.grad))
        (loss_e, grad_e), (loss_f, grad_f) = results
        assert torch.allclose(loss_f, loss_e, rtol=2e-2, atol=1e-4)
        assert ((grad_f - grad_e).norm() / grad_e.norm()) < 5e-2
    assert fast.encoder.graphs and not fast.encoder.failed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_cuda_encoder_keeps_bf16_weights_and_gives_what_autocast_gave(tiny_clip):
    """On CUDA the encoder's weights are stored in bf16, as autocast cast them at every call:
    the features of fp32 weights under autocast, without the casts."""
    cuda = torch.device("cuda")
    guidance = ClipGuidance(tiny_clip, cuda, graphs=False)
    assert {p.dtype for p in guidance.visual.parameters()} == {torch.bfloat16}
    fp32 = ClipGuidance(tiny_clip, cuda, graphs=False)
    fp32.visual.float()
    images = frame_with_shape().repeat(2, 1, 1, 1).to(cuda)
    for a, b in zip(guidance.features(images), fp32.features(images)):
        assert ((a - b).norm() / b.norm()) < 1e-2


def test_graphed_encoder_captures_shapes_that_come_again_and_falls_back_to_eager(monkeypatch):
    """The dispatch around CUDA graphs (the capture itself is checked on CUDA above)."""
    from engine.neural.clip_guidance import GraphedEncoder

    encoder = GraphedEncoder(lambda x: x * 2, limit=1)
    captured = []
    monkeypatch.setattr(encoder, "_capture", lambda x: captured.append(tuple(x.shape)) or (lambda y: y * 2))
    a, b = torch.ones(2, 3), torch.ones(3, 3)
    assert torch.equal(encoder(a), a * 2) and not captured        # a one-off shape runs eagerly
    encoder(a)
    encoder(a)
    assert captured == [(2, 3)]                                    # captured once, then replayed
    encoder(b)
    encoder(b)
    assert captured == [(2, 3), (3, 3)]                            # over the limit: replaces
    assert list(encoder.graphs) == [((3, 3), False)]               # the least recently used
    encoder(a)
    assert captured == [(2, 3), (3, 3), (2, 3)] and torch.equal(encoder(a), a * 2)

    failing = GraphedEncoder(lambda x: x + 1)

    def refuse(x):
        raise RuntimeError("capture refused")

    monkeypatch.setattr(failing, "_capture", refuse)
    failing(a)
    with pytest.warns(UserWarning, match="running eagerly"):
        assert torch.equal(failing(a), a + 1)
    assert failing.failed and torch.equal(failing(a), a + 1)


def test_optimisation_steps_never_wait_for_the_device(tiny_clip, device):
    """Reading a value back (``.item()``, a singularity check, a tensor made from Python data)
    makes the host wait until the GPU is idle; once per step that serialises host and GPU.
    Checked through the dispatcher (and on CUDA by CUDA's own sync warnings): besides the
    rasterizer's plan at the start of a run, the steps of a window (CLIP guidance, views,
    render, temporal terms) do none of it, with or without a view bank: a run of 12 steps
    waits as often as one of 2."""
    import traceback
    import warnings

    from torch.utils._python_dispatch import TorchDispatchMode

    from engine.initialise import EdgeSaliency
    from engine.losses import ChamferLoss
    from engine.optimise import StrokeOptimiser
    from engine.settings import Settings

    class Waits(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.found = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if str(func.overloadpacket) in ("aten._local_scalar_dense", "aten.lift_fresh",
                                            "aten._linalg_check_errors", "aten.nonzero"):
                stack = traceback.extract_stack()
                ours = [f for f in stack if "/engine/" in f.filename]
                adam = any("/torch/optim/" in f.filename for f in stack)   # its step count: CPU
                if ours and not adam:
                    self.found.append(f"{func.overloadpacket} at {ours[-1].filename}:{ours[-1].lineno} "
                                      f"in {ours[-1].name}")
            return func(*args, **(kwargs or {}))

    cuda = device.type == "cuda"
    s = Settings.from_preset("fast", strokes=4)
    frames = frame_with_shape().repeat(2, 1, 1, 1).to(device)
    for guidance in (ClipGuidance(tiny_clip, device, graphs=False), ChamferLoss(),
                     ClipGuidance(tiny_clip, device, graphs=False, view_bank=8)):
        opt = StrokeOptimiser(s, SplatRasterizer(replan_every=50), guidance, EdgeSaliency(),
                              area=(0, 0, 224, 224))
        init = opt.new_strokes(frames, None, s.strokes, torch.Generator(device).manual_seed(0))
        tracks = opt.samples(init)
        seen = torch.ones(tracks.shape[:3], dtype=torch.bool, device=device)
        groups = torch.arange(s.strokes, device=device)

        def window(steps):
            s.frame_steps = steps
            return opt.window(frames, None, init, init[0], tracks, seen, groups)

        window(2)                                     # first calls: cuDNN picks its algorithms
        found, synced = [], []
        for steps in (2, 12):
            waits = Waits()
            with waits, warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if cuda:
                    torch.cuda.set_sync_debug_mode("warn")
                try:
                    window(steps)
                finally:
                    if cuda:
                        torch.cuda.set_sync_debug_mode("default")
            found.append(waits.found)
            synced.append(sum("synchroniz" in str(w.message) for w in caught))
        # the rasterizer plans once at the start of a run (3 reads), then no step waits; the
        # chamfer target is made on the host from the frame's lines, once per window
        found = [[w for w in f if not w.endswith("in prepare")] for f in found]
        assert len(found[0]) == len(found[1]) == 3, (guidance.name, found)
        assert all("rasterizer.py" in where for where in found[1])
        assert synced[0] == synced[1], (guidance.name, synced)


def test_the_loss_is_the_mean_over_the_plain_pair_and_its_views(tiny_clip, device):
    """CLIPasso averages its layer distances over the plain pair and the views (a sum would be
    1 + views times larger against every other term): with every view the identity, the
    loss is the plain pair's, which ``evaluate`` gives alone."""
    guidance = ClipGuidance(tiny_clip, device, views=4, graphs=False)
    frame = frame_with_shape().to(device)
    target = guidance.prepare(frame, None)
    sketch = torch.rand_like(frame)
    identity = torch.eye(3, device=device).expand(4, 3, 3)
    guidance._fresh_warps = lambda n, dtype: identity
    plain = guidance.evaluate(sketch, target)
    assert plain.item() > 0
    assert guidance(sketch, target).item() == pytest.approx(plain.item(), rel=2e-3)   # a sum: 5x


def test_views_fill_with_black_as_clipasso(tiny_clip):
    """The frame's and the sketch's views shrink them inside black, as ``fill=0``; a white
    frame's views are never all white (the old border fill kept them white)."""
    from engine.neural.clip_guidance import random_homographies, warp

    white = torch.ones(8, 3, 224, 224)
    views = warp(white, random_homographies(8, torch.Generator().manual_seed(0), torch.device("cpu")))
    corners = views[..., [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners < 0.05).float().mean() > 0.5 and (views.flatten(1).amin(1) < 0.05).all()
    assert (views[..., 100:124, 100:124] > 0.99).all()                  # the middle stays


def test_keyframe_keeps_each_seeds_best_rated_iterate_and_the_best_seed(tiny_clip):
    """With CLIP the keyframe's seeds are rated on the plain pair every 10 steps; the result
    is the best-rated iterate of the best-rated seed, and its loss is that rating."""
    from engine.initialise import EdgeSaliency
    from engine.optimise import StrokeOptimiser
    from engine.settings import Settings

    s = Settings.from_preset("fast", strokes=4, seeds=3, keyframe_steps=25)
    guidance = ClipGuidance(tiny_clip, "cpu", views=2, graphs=False)
    opt = StrokeOptimiser(s, SplatRasterizer(), guidance, EdgeSaliency(), area=(0, 0, 224, 224))
    frame = frame_with_shape()
    ratings = []
    evaluate = guidance.evaluate
    guidance.evaluate = lambda sk, t: ratings.append(evaluate(sk, t)) or ratings[-1]
    points, loss = opt.keyframe(frame, None, torch.Generator().manual_seed(0))
    ratings = torch.stack(ratings)                                        # (ratings, seeds)
    assert ratings.shape == (4, 3)                                        # steps 0, 10, 20 and the end
    assert loss.item() == pytest.approx(ratings.min().item(), rel=1e-5)
    again = evaluate(opt.render(points), guidance.prepare(frame, None))
    assert again.item() == pytest.approx(loss.item(), rel=1e-4)


def test_clip_sketches_on_the_subject_canvas(tiny_clip, tmp_path, monkeypatch):
    """The reference stretches the frame to 224 x 224; here CLIP sees the canvas that follows
    the subject (a small subject fills it), as the weight-free path does."""
    import numpy as np

    from engine.pipeline import Job, run_sketch
    from engine.progress import Progress
    from engine.settings import Settings
    from media import moving_disc, write_video

    frames, masks = moving_disc()              # a small disc moving across a wide frame
    clip = write_video(str(tmp_path / "disc.mp4"), frames[:3])
    mask = write_video(str(tmp_path / "disc.mask.mp4"), np.repeat(masks[:3, ..., None], 3, -1))
    seen = []
    prepare = ClipGuidance.prepare
    monkeypatch.setattr(ClipGuidance, "prepare",
                        lambda self, f, m, copies=1: seen.append(m.detach().clone()) or prepare(self, f, m, copies))
    monkeypatch.setattr("engine.pipeline.build_guidance", lambda name, device: ClipGuidance(tiny_clip, device, views=1))
    settings = Settings.from_preset("fast", mask=mask, strokes=2, seeds=1, keyframe_steps=2, frame_steps=1,
                                    reinit_steps=1, guidance="line", tracker="lucas-kanade")
    run_sketch(Job(clip, str(tmp_path / "out"), settings, preview=False), Progress())
    share = (masks[0] > 127).mean()                                       # of the whole frame
    assert seen and all(m.mean().item() > 4 * share for m in seen)        # the canvas is the subject's
