"""CLIP guidance, CLIPasso's loss, on OpenAI's RN101 image encoder (through open_clip).

For a sketch and its frame: L2 between their features at the outputs of ``layer2`` and
``layer3`` (weight 1 each) plus 0.1 x the cosine distance of the final embeddings, averaged
over the plain pair and ``views`` augmented pairs (the same warp for sketch and frame:
torchvision's ``RandomPerspective(distortion_scale=0.5, fill=0)`` then
``RandomResizedCrop(224, scale=(0.8, 0.8), ratio=(1, 1))``, as CLIPasso; the content shrinks
and what falls outside is black). ``evaluate`` is the same distance on the plain pair alone,
CLIPasso's evaluation loss (the optimiser keeps the iterate and the seed it rates best).
Everything is batched:
the views of all frames go through the encoder together, and the augmentation is a
homography per view, applied with ``grid_sample``. A keyframe's seeds share their frame's
warps each step, so its views are encoded once per step, not once per seed.
"""
from __future__ import annotations

import functools
import math
import os
import warnings
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..devices import encoder_dtype
from ..errors import EngineError
from ..imageops import composite_on_white
from ..prefetch import cuda_capture_lock
from . import torchscript_archive

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_clip_visual(path: str, device: torch.device, model: str = "clip-rn101"):
    """The image encoder of an OpenAI CLIP checkpoint (the released TorchScript archive, or a
    state dict) as an open_clip module; ``model`` is its name in the model manager
    (``clip-rn101``: a ResNet with ``layer1..4`` and ``attnpool``; ``clip-vit-b-32``: a vision
    transformer). Only the image tower is built: the text tower is never used."""
    fix = f"run `dynasketch models download {model}`"
    try:
        from open_clip.model import _build_vision_tower
    except ImportError:
        raise EngineError("CLIP needs the open-clip-torch package: pip install open-clip-torch==3.3.0") from None
    try:
        embed_dim, config, weights = vision_tower_config(read_clip_checkpoint(path))
        with torch.device("meta"):              # no random weights first: the file's are used
            visual = _build_vision_tower(embed_dim, config, quick_gelu=True)    # OpenAI's GELU
        visual.load_state_dict(weights, assign=True)
        visual = visual.float()                 # OpenAI's weights are fp16
    except Exception as exc:  # a corrupt or foreign file
        raise EngineError(f"cannot load CLIP weights from {path} ({type(exc).__name__}); {fix}") from None
    visual = visual.to(device).eval().requires_grad_(False)
    needed = ("transformer",) if model == "clip-vit-b-32" else ("layer2", "layer3", "layer4", "attnpool")
    if not all(hasattr(visual, n) for n in needed):
        raise EngineError(f"{path} is not the CLIP encoder {model} expects; {fix}")
    return visual


def read_clip_checkpoint(path: str) -> dict:
    """The tensors of an OpenAI CLIP checkpoint: OpenAI releases TorchScript archives (fp16),
    whose weights are read without TorchScript (``torchscript_archive``); a plain state dict in
    the same layout is read too."""
    if not torchscript_archive.is_torchscript(path):
        return torch.load(path, map_location="cpu", weights_only=True)
    try:
        return torchscript_archive.read_tensors(path)
    except torchscript_archive.UnknownContent:   # something new in the archive: let TorchScript read it
        with warnings.catch_warnings():          # deprecated, but it reads every archive it wrote
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(path, map_location="cpu").state_dict()


def vision_tower_config(state: dict):
    """``(embed_dim, CLIPVisionCfg, image-tower weights)`` read off the shapes of an OpenAI CLIP
    state dict, as open_clip does for the whole model (heads of 64 channels, as OpenAI's)."""
    from open_clip.model import CLIPVisionCfg

    weights = {k[len("visual."):]: t for k, t in state.items() if k.startswith("visual.")}

    def count(prefix: str) -> int:
        return len({k[len(prefix):].split(".")[0] for k in weights if k.startswith(prefix)})

    if "proj" in weights:                                                   # a vision transformer
        patch = weights["conv1.weight"].shape[-1]
        grid = round((weights["positional_embedding"].shape[0] - 1) ** 0.5)
        config = CLIPVisionCfg(layers=count("transformer.resblocks."), width=weights["conv1.weight"].shape[0],
                               patch_size=patch, image_size=patch * grid)
        return weights["proj"].shape[1], config, weights
    grid = round((weights["attnpool.positional_embedding"].shape[0] - 1) ** 0.5)   # a ResNet
    config = CLIPVisionCfg(layers=tuple(count(f"layer{i}.") for i in range(1, 5)),
                           width=weights["layer1.0.conv1.weight"].shape[0], image_size=32 * grid)
    return weights["attnpool.c_proj.weight"].shape[0], config, weights


def homographies(corners_from: Tensor, corners_to: Tensor) -> Tensor:
    """Batched 3x3 homographies mapping 4 points ``(B, 4, 2)`` onto 4 points ``(B, 4, 2)``."""
    x, y = corners_from[..., 0], corners_from[..., 1]
    u, v = corners_to[..., 0], corners_to[..., 1]
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)                                  # (B, 8, 8)
    b = torch.cat([u, v], 1)[..., None]                                  # (B, 8, 1)
    h = torch.linalg.solve_ex(a, b)[0][..., 0]     # no singularity check: it would wait for the GPU
    return torch.cat([h, torch.ones_like(h[:, :1])], 1).view(-1, 3, 3)


@functools.lru_cache(maxsize=None)
def _pixel_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Homogeneous pixel centres ``(1, H*W, 3)`` in [-1, 1]^2 (the corners of the image are at
    -1 and 1, as ``grid_sample(align_corners=False)`` reads them), made once per device."""
    ys, xs = torch.meshgrid((torch.arange(h, device=device, dtype=dtype) + 0.5) * (2.0 / h) - 1,
                            (torch.arange(w, device=device, dtype=dtype) + 0.5) * (2.0 / w) - 1,
                            indexing="ij")
    return torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, -1, 3)


REFERENCE_SIZE = 224          # CLIPasso draws its views' parameters in pixels of a 224 image


def view_parameters(n: int, generator: torch.Generator | None, device: torch.device,
                    distortion: float = 0.5, crop_scale: float = 0.8, size: int = REFERENCE_SIZE):
    """CLIPasso's augmentation drawn ``n`` times, as torchvision draws it for a ``size`` image:
    ``RandomPerspective(distortion_scale=distortion)`` moves each corner inwards by a whole
    number of pixels in ``[0, int(distortion * size // 2)]`` per axis (``endpoints``
    ``(n, 4, 2)``: where the image's corners land, top-left, top-right, bottom-right,
    bottom-left), then ``RandomResizedCrop(size, scale=(crop_scale, crop_scale), ratio=(1, 1))``
    takes a square of ``crop`` pixels at a whole-pixel ``offset`` ``(n, 2)`` (x, y). Returns
    ``(endpoints, offsets, crop)``."""
    reach = int(distortion * (size // 2))
    whole = lambda count, *shape: (torch.rand(*shape, generator=generator, device=device)  # noqa: E731
                                   * count).floor().clamp(max=count - 1)
    moved = whole(reach + 1, n, 4, 2)                                   # inwards, per corner and axis
    crop = int(round(math.sqrt(crop_scale * size * size)))
    return _square(0, size - 1 - reach, device, moved.dtype) + moved, whole(size - crop + 1, n, 2), crop


@functools.lru_cache(maxsize=None)
def _square(low: float, high: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The corners ``(4, 2)`` of the square [low, high]^2, top-left first, clockwise; made once
    per device (a tensor made from Python numbers waits for the device)."""
    return torch.tensor([[low, low], [high, low], [high, high], [low, high]], device=device, dtype=dtype)


@functools.lru_cache(maxsize=None)
def _unit_maps(size: int, crop: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel units (centres at ``i + 0.5``) of a ``size`` image to [-1, 1] units, back, and
    the scale of a ``crop`` resized to ``size`` (3 x 3 each)."""
    to_unit = torch.tensor([[2.0 / size, 0, -1], [0, 2.0 / size, -1], [0, 0, 1]], device=device, dtype=dtype)
    from_unit = torch.tensor([[size / 2.0, 0, size / 2.0], [0, size / 2.0, size / 2.0], [0, 0, 1]],
                             device=device, dtype=dtype)
    scaled = torch.tensor([[crop / size, 0, 0], [0, crop / size, 0], [0, 0, 1]], device=device, dtype=dtype)
    return to_unit, from_unit, scaled


def view_homographies(endpoints: Tensor, offsets: Tensor, crop: int, size: int = REFERENCE_SIZE) -> Tensor:
    """The warps ``(n, 3, 3)`` (output -> input, in [-1, 1] coordinates, ``warp`` applies
    them) of the views ``view_parameters`` drew: the crop of the perspective's output,
    resized to the whole image, and the perspective that put the image's corners at
    ``endpoints`` (content shrinks inwards; what falls outside the image is black). In pixel
    units with pixel centres at ``i + 0.5``, as torchvision's ``perspective`` and
    ``resized_crop`` compute them."""
    n, dtype, device = endpoints.shape[0], endpoints.dtype, endpoints.device
    start = _square(0, size - 1, device, dtype).expand(n, 4, 2)
    perspective = homographies(endpoints, start)                        # its output -> the image
    to_unit, from_unit, scaled = _unit_maps(size, crop, device, dtype)
    resized = scaled.expand(n, 3, 3).clone()                            # the view -> the crop
    resized[:, :2, 2] = offsets
    return to_unit @ perspective @ resized @ from_unit


def random_homographies(n: int, generator: torch.Generator | None, device: torch.device,
                        dtype: torch.dtype = torch.float32, distortion: float = 0.5,
                        crop_scale: float = 0.8) -> Tensor:
    """``n`` random CLIPasso views ``(n, 3, 3)`` (``view_parameters``, ``view_homographies``),
    each mapping output coordinates in [-1, 1]^2 to input coordinates (``warp`` applies them)."""
    endpoints, offsets, crop = view_parameters(n, generator, device, distortion, crop_scale)
    return view_homographies(endpoints.to(dtype), offsets.to(dtype), crop)


def warp(images: Tensor, hom: Tensor) -> Tensor:
    """Each image ``(n, C, H, W)`` resampled through its homography ``(n, 3, 3)``; what falls
    outside the image is 0 (black, as CLIPasso's ``fill=0``)."""
    n, _, h, w = images.shape
    mapped = _pixel_grid(h, w, images.device, images.dtype) @ hom.transpose(1, 2)
    mapped = (mapped[..., :2] / mapped[..., 2:].clamp_min(1e-6)).view(n, h, w, 2)
    return F.grid_sample(images, mapped, mode="bilinear", padding_mode="zeros", align_corners=False)


def fold_batch_norms(module: torch.nn.Module) -> torch.nn.Module:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d (among one module's
    children, in order) into that convolution, in place: the same function, a third fewer
    kernels. The ResNet CLIP encoders are built of such conv -> bn pairs."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for parent in list(module.modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv.eval(), bn.eval()).requires_grad_(False))
                setattr(parent, bn_name, torch.nn.Identity())
    return module


def average_pool_2x2(x: Tensor) -> Tensor:
    """``F.avg_pool2d(x, 2)`` of ``x`` ``(N, C, H, W)``; channels-last maps (the GPU's layout) as
    a mean over a view in that layout: one reduction forward, one broadcast division backward.
    ATen's average-pool kernels were a quarter of the encoder's GPU time in the H100 profile of
    a step (the backward 280 us a call, far over its memory traffic; docs/MODELS.md). For
    channel-first maps ATen's pool stays: on the CPU it is as fast or faster."""
    n, c, h, w = x.shape
    if x.stride(1) != 1 or c == 1:
        return F.avg_pool2d(x, 2)
    x = x[..., : h - h % 2, : w - w % 2]                         # floor, as AvgPool2d
    x = x.permute(0, 2, 3, 1).unflatten(1, (h // 2, 2)).unflatten(3, (w // 2, 2))   # (N, H, W, C)
    return x.mean((2, 4)).permute(0, 3, 1, 2)


class AveragePool2x2(torch.nn.Module):
    """``nn.AvgPool2d(2)`` through ``average_pool_2x2``."""

    def forward(self, x: Tensor) -> Tensor:
        return average_pool_2x2(x)


def replace_average_pools(module: torch.nn.Module) -> torch.nn.Module:
    """In place: every ``AvgPool2d`` that halves (kernel 2, stride 2, no padding) becomes
    ``AveragePool2x2`` and every one that does nothing (kernel 1, stride 1; a copy, in the first
    block's shortcut of the ResNet CLIP encoders) an ``Identity``: the same function."""
    def size(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    for parent in list(module.modules()):
        for name, pool in list(parent.named_children()):
            if not isinstance(pool, torch.nn.AvgPool2d) or pool.ceil_mode or pool.divisor_override \
                    or size(pool.padding) != (0, 0):
                continue
            if size(pool.kernel_size) == size(pool.stride) == (2, 2):
                setattr(parent, name, AveragePool2x2())
            elif size(pool.kernel_size) == size(pool.stride) == (1, 1):
                setattr(parent, name, torch.nn.Identity())
    return module


class GraphedEncoder:
    """Replays a CUDA encoder call as a CUDA graph, one graph per batch size and grad mode
    (captured the second time a shape comes, so one-off shapes stay eager). At most ``limit``
    graphs are kept (each holds its own memory): a new one replaces the least recently used.

    A step of CLIP guidance launches thousands of small kernels; on a fast GPU launching them
    costs more than running them. With a graph the whole forward (and, for inputs that need
    gradients, the backward) is one launch. Outputs of a no-grad replay are overwritten by the
    next replay of that graph: use them before calling again. If a capture fails, calls run
    eagerly from then on.
    """

    def __init__(self, encode, limit: int = 8):
        self.encode = encode
        self.limit = limit
        self.graphs: OrderedDict = OrderedDict()       # least recently used first
        self.seen: set = set()
        self.failed = False

    def __call__(self, x: Tensor):
        key = (tuple(x.shape), x.requires_grad)
        if self.failed or key not in self.graphs and key not in self.seen:
            self.seen.add(key)                          # first sight of a shape: eager
            return self.encode(x)
        if key not in self.graphs:
            if len(self.graphs) >= self.limit:
                self.graphs.popitem(last=False)
            try:
                self.graphs[key] = self._capture(x)
            except Exception as exc:  # a capture the driver or an op refuses: run eagerly
                warnings.warn(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); running eagerly")
                self.failed = True
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                return self.encode(x)
        self.graphs.move_to_end(key)
        return self.graphs[key](x)

    def _capture(self, x: Tensor):
        with cuda_capture_lock:             # no other thread's CUDA work during a capture
            return self._capture_now(x)

    def _capture_now(self, x: Tensor):
        quiet = getattr(torch.autograd.graph, "set_warn_on_accumulate_grad_stream_mismatch", None)
        if quiet is not None:            # the capture's side stream makes autograd warn; harmless
            quiet(False)
        sample = x.detach().clone()
        if x.requires_grad:
            return torch.cuda.make_graphed_callables(self.encode, (sample.requires_grad_(True),))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(3):
                self.encode(sample)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            outputs = self.encode(sample)

        def replay(inp: Tensor):
            sample.copy_(inp)
            graph.replay()
            return outputs

        return replay


class ClipTarget(NamedTuple):
    """What ``ClipGuidance.prepare`` keeps of a batch of frames: the frames on white, their
    features (one row per sketch) and how many sketches each frame has (``copies``, a
    keyframe's seeds); with a view bank, also each frame's ``K`` warps ``(B, K, 3, 3)`` and its
    features under them (each ``(B, K, ...)``)."""
    frames: Tensor
    plain: list
    warps: Tensor | None = None
    bank: list | None = None
    copies: int = 1


class ClipGuidance:
    """CLIPasso's perceptual loss; the same interface as ``losses.ChamferLoss``."""

    name = "clip"

    def __init__(self, weights: str | None, device: torch.device, views: int = 4, seed: int = 0,
                 visual=None, graphs: bool | None = None, channels_last: bool | None = None,
                 compiled: bool | None = None, view_bank: int | None = None):
        """``weights``: an OpenAI CLIP RN101 checkpoint; or pass a ready ``visual`` encoder.
        ``channels_last``: the encoder's memory layout (default: channels-last on CUDA only).
        ``graphs``: replay the encoder as CUDA graphs (default: on CUDA, unless the
        environment variable DYNASKETCH_CUDA_GRAPHS is 0). ``compiled``: run the encoder
        through ``torch.compile``, which fuses its elementwise work, with the batch size
        symbolic so that one compilation serves every batch (default: off, unless
        DYNASKETCH_COMPILE is 1; an experiment until a GPU measures it, docs/MODELS.md).
        ``view_bank``: if above 0, each frame gets that many warps (rounded up to a multiple
        of ``views``) and its features under them once, in ``prepare``, and every step warps
        the sketches by ``views`` of them drawn at random, so the frames' views are not
        encoded again each step (default: 0, unless DYNASKETCH_VIEW_BANK is set; an
        experiment: CLIPasso draws fresh warps every step, docs/MODELS.md)."""
        self.device = torch.device(device)
        self.visual = visual.to(self.device).eval().requires_grad_(False) if visual is not None \
            else load_clip_visual(weights, self.device)
        self.visual = replace_average_pools(fold_batch_norms(self.visual))   # same function, faster
        cuda = self.device.type == "cuda"
        self.channels_last = channels_last if channels_last is not None else cuda
        if self.channels_last:
            self.visual = self.visual.to(memory_format=torch.channels_last)
        self.dtype = encoder_dtype(self.device)        # bf16 on CUDA only (MPS: needs macOS 14)
        if self.dtype != torch.float32:   # stored as autocast would cast them (~450 kernels a step fewer)
            self.visual = self.visual.to(self.dtype)
        if graphs is None:
            graphs = cuda and os.environ.get("DYNASKETCH_CUDA_GRAPHS", "1") != "0"
        if compiled is None:
            compiled = os.environ.get("DYNASKETCH_COMPILE", "0") == "1"
        encode = torch.compile(self._encode, dynamic=True) if compiled else self._encode
        self.encoder = GraphedEncoder(encode) if graphs and cuda else encode
        self.views = views
        if view_bank is None:
            text = os.environ.get("DYNASKETCH_VIEW_BANK", "0") or "0"
            if not text.isdigit():
                raise EngineError(f"DYNASKETCH_VIEW_BANK={text!r}: set it to a number of warps "
                                  "per frame (such as 64), or 0 for fresh warps every step")
            view_bank = int(text)
        self.view_bank = -(-view_bank // views) * views if views and view_bank > 0 else 0
        self.bank_dtype = self.dtype                   # what autocast's layers give
        self.size = 224
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        # warps are drawn on the CPU for Apple's GPUs (a batched 8 x 8 solve there is not sure)
        self.draw_device = torch.device("cpu") if self.device.type == "mps" else self.device
        self.generator = torch.Generator(device=self.draw_device).manual_seed(seed)
        self._drawn, self._next_drawn = None, 0            # warps drawn ahead (_fresh_warps)

    def features(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """layer2 and layer3 (``rows``) and the final embedding of ``(B, 3, H, W)`` images in [0, 1]."""
        if images.shape[-1] != self.size:
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (images - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.encoder(x)

    def _encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The encoder on normalised images; bf16 autocast on CUDA (no cache: graph-safe)."""
        v = self.visual
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda",
                            cache_enabled=False):
            f2 = v.layer2(v.layer1(v.stem(x)))
            f3 = v.layer3(f2)
            embedding = v.attnpool(v.layer4(f3))
        return self.rows(f2.float()), self.rows(f3.float()), embedding.float()

    def rows(self, maps: Tensor) -> Tensor:
        """Feature maps ``(N, C, H, W)`` as one row per image ``(N, C*H*W)``, in the order the
        encoder's layout keeps them in memory: a view, so the loss's gradient comes back to the
        encoder in its own layout. (Rows in channel-first order would copy channels-last maps and
        send their gradient back channel-first, and every elementwise kernel of the backward that
        met it would mix layouts.) The L2 of the loss does not depend on the order."""
        return (maps.permute(0, 2, 3, 1) if self.channels_last else maps).flatten(1)

    def prepare(self, frames: Tensor, masks: Tensor | None, copies: int = 1) -> ClipTarget:
        """Targets for ``frames`` ``(B, 3, H, W)``, each sketched ``copies`` times (a keyframe's
        seeds: sketches ``(B * copies, ...)``, a frame's copies next to each other). The copies
        of a frame share its warps each step, so its views are encoded once, not per copy:
        each copy still sees fresh random warps every step, as CLIPasso's seeds do, and the
        seeds' final losses are compared on the same warps."""
        frames = composite_on_white(frames, masks)
        with torch.no_grad():          # clones: a graph's next replay overwrites its outputs
            plain = [self._per_sketch(f, copies).clone() for f in self.features(frames)]
            if not self.view_bank:
                return ClipTarget(frames, plain, copies=copies)
            b, k = frames.shape[0], self.view_bank
            warps = random_homographies(b * k, self.generator, self.draw_device).to(self.device).view(b, k, 3, 3)
            chunks, repeated = [], frames.repeat_interleave(self.views, 0)
            for start in range(0, k, self.views):       # batches of the steps' no-grad shape
                hom = warps[:, start:start + self.views].reshape(-1, 3, 3)
                views = warp(repeated, hom)
                chunks.append([f.view(b, self.views, *f.shape[1:]).to(self.bank_dtype)
                               for f in self.features(views)])
            bank = [torch.cat(parts, 1) for parts in zip(*chunks)]
        return ClipTarget(frames, plain, warps, bank, copies)

    def __call__(self, sketches: Tensor, target: ClipTarget) -> Tensor:
        """The sketches and their augmented views go through the encoder as one batch, the
        frames' views (no gradients) as another, or come from the view bank."""
        b, copies = sketches.shape[0], target.copies
        if not self.views:
            return self._distance(self.features(sketches), target.plain)
        repeated = sketches.repeat_interleave(self.views, 0)
        if target.bank is not None:
            pick = torch.randint(self.view_bank, (b, self.views), generator=self.generator,
                                 device=self.draw_device).to(sketches.device)
            rows = (torch.arange(b, device=sketches.device) // copies)[:, None]     # each sketch's frame
            sketch_views = warp(repeated, target.warps[rows, pick].flatten(0, 1))
            frame_views = [f[rows, pick].flatten(0, 1) for f in target.bank]
        else:
            frames = target.frames
            hom = self._fresh_warps(frames.shape[0] * self.views, frames.dtype)
            with torch.no_grad():
                frame_views = [self._per_sketch(f, copies, self.views)
                               for f in self.features(warp(frames.repeat_interleave(self.views, 0), hom))]
            sketch_views = warp(repeated, self._per_sketch(hom, copies, self.views))
        drawn = self.features(torch.cat([sketches, sketch_views]))
        wanted = [torch.cat(pair) for pair in zip(target.plain, frame_views)]   # no slices to backward
        distance = self._distance(drawn, wanted)
        return (distance[:b] + distance[b:].view(b, self.views).sum(1)) / (1 + self.views)

    @torch.no_grad()
    def evaluate(self, sketches: Tensor, target: ClipTarget) -> Tensor:
        """The loss of each sketch on the plain pair alone ``(B,)``, no augmentation: what
        CLIPasso rates its iterates and seeds by."""
        return self._distance(self.features(sketches), target.plain)

    def _fresh_warps(self, n: int, dtype: torch.dtype, ahead: int = 50) -> Tensor:
        """``n`` random warps ``(n, 3, 3)``, a fresh set every call, drawn ``ahead`` calls' worth
        at a time: drawing them is some 55 small operations, which on a GPU cost a launch each
        (and the host's time, where a step is bound by launching)."""
        if self._drawn is None or self._drawn.shape[1:] != (n, 3, 3) or self._drawn.dtype != dtype \
                or self._next_drawn == len(self._drawn):
            self._drawn = random_homographies(ahead * n, self.generator, self.draw_device, dtype).to(
                self.device).view(ahead, n, 3, 3)
            self._next_drawn = 0
        self._next_drawn += 1
        return self._drawn[self._next_drawn - 1]

    @staticmethod
    def _per_sketch(rows: Tensor, copies: int, views: int = 1) -> Tensor:
        """Each frame's rows (``views`` of them, next to each other) repeated for its copies."""
        if copies == 1:
            return rows
        return rows.unflatten(0, (-1, views)).repeat_interleave(copies, 0).flatten(0, 1)

    @staticmethod
    def _distance(a, b) -> Tensor:
        """Per image: L2 of layer2 and layer3 features, plus 0.1 x cosine distance."""
        l2 = sum((x - y).square().mean(1) for x, y in zip(a[:2], b[:2]))
        return l2 + 0.1 * (1.0 - F.cosine_similarity(a[2], b[2], dim=1))
