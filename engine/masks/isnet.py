"""Masking with IS-Net (Qin et al., "Highly Accurate Dichotomous Image Segmentation", ECCV
2022; the general-use model) through ONNX Runtime, with the masks cached per clip.

The ONNX files (rembg's release, IMG.LY's package) are exported for a fixed 1024 x 1024
input, and 39 of their Resize nodes have that size's feature-map sizes baked in as
constants. ``any_size`` rewires each of those to the input's own size divided by the same
power of two, so the network runs at ``size`` (a multiple of 128, where every pooling level
halves exactly) instead.

Conventions, checked on real frames (``tests/neural/test_isnet_masker.py``, docs/MODELS.md): RGB resized
to ``size`` x ``size``, ``rgb / 255 - 0.5`` (DIS's own normalisation, std 1), NCHW; the
first output, ``output``, is the sigmoid map of the finest side output in [0, 1]; the mask
is that map resized to the frame and thresholded at 0.5.
"""
from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from ..errors import EngineError
from ..video import FrameRange
from .cache import MaskCache
from .flow import carry, flow_grey, new_flow

THRESHOLD = 0.5
EXPORT_SIZE = 1024          # the input size the ONNX files were exported for
DEFAULT_SIZE = 1024         # docs/BENCHMARKS.md: sizes, frames between network runs, seconds
DEFAULT_EVERY = 2           # per frame, IoU against the full-size network on every frame


def providers_for(device_type: str, available: list[str], system: str = sys.platform) -> list[str]:
    """ONNX Runtime's execution providers, best first: CUDA for a CUDA run where
    onnxruntime-gpu provides it, CoreML on macOS, the CPU everywhere."""
    chosen = []
    if device_type == "cuda" and "CUDAExecutionProvider" in available:
        chosen.append("CUDAExecutionProvider")
    if system == "darwin" and "CoreMLExecutionProvider" in available:
        chosen.append("CoreMLExecutionProvider")
    return chosen + ["CPUExecutionProvider"]


def any_size(model):
    """``model`` (an ``onnx.ModelProto`` exported at ``EXPORT_SIZE``) rewired to take any input
    size that is a multiple of 128; returns it."""
    from onnx import helper, numpy_helper

    graph = model.graph
    source = graph.input[0].name
    made = {n.output[0]: n for n in graph.node}
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                 for n in graph.node if n.op_type == "Constant" and n.attribute}
    new_nodes = [helper.make_node("Shape", [source], ["dynasketch/input_hw"], start=2, end=4)]
    divided = set()
    for node in graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or node.input[3] not in made:
            continue
        sizes = made[node.input[3]]             # Concat(batch and channels of x, constant h w)
        if sizes.op_type != "Concat":
            continue
        for k, name in enumerate(sizes.input):
            hw = constants.get(name)
            if hw is None or hw.shape != (2,):
                continue
            step = EXPORT_SIZE // int(hw[0])
            out = f"dynasketch/input_hw_over_{step}"
            if out not in divided:
                divided.add(out)
                new_nodes.append(helper.make_node("Constant", [], [out + "/by"], value=numpy_helper.from_array(
                    np.array([step, step], np.int64))))
                new_nodes.append(helper.make_node("Div", ["dynasketch/input_hw", out + "/by"], [out]))
            sizes.input[k] = out
    for node in reversed(new_nodes):
        graph.node.insert(0, node)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[2].dim_param, dims[3].dim_param = "height", "width"
    del graph.value_info[:]                     # shapes inferred at the old size
    return model


def load_session(checkpoint: str, device_type: str = "cpu"):
    """An ONNX Runtime session of the ISNet file ``checkpoint``, rewired for any input size."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise EngineError("ISNet masking needs the onnxruntime and onnx packages: "
                          "pip install onnxruntime onnx") from None
    name = os.path.basename(checkpoint)
    try:
        model = any_size(onnx.load(checkpoint))
    except Exception as exc:
        raise EngineError(f"cannot read the ISNet file {checkpoint} ({type(exc).__name__}); run "
                          f"`dynasketch models download {name.removesuffix('.onnx')}`") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3              # not the initializers the rewiring left unused
    providers = providers_for(device_type, ort.get_available_providers())
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=providers)
    except Exception as exc:
        raise EngineError(f"ONNX Runtime cannot load {checkpoint} ({type(exc).__name__}: "
                          f"{str(exc)[:100]}); run `dynasketch models download "
                          f"{name.removesuffix('.onnx')}`") from None


def probability(session, rgb: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """The network's subject map of an ``(H, W, 3)`` uint8 frame, ``(size, size)`` float32."""
    small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if size < max(rgb.shape[:2])
                       else cv2.INTER_LINEAR)
    x = (small.astype(np.float32) / 255.0 - 0.5).transpose(2, 0, 1)[None]
    return session.run(["output"], {session.get_inputs()[0].name: np.ascontiguousarray(x)})[0][0, 0]


def full_size_probability(session, rgb: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """The network's subject map of an ``(H, W, 3)`` uint8 frame at the frame's size, float32."""
    return cv2.resize(probability(session, rgb, size), (rgb.shape[1], rgb.shape[0]),
                      interpolation=cv2.INTER_LINEAR)


def segment(session, rgb: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """The subject of an ``(H, W, 3)`` uint8 frame as ``(H, W)`` uint8 0/255."""
    return ((full_size_probability(session, rgb, size) > THRESHOLD) * 255).astype(np.uint8)


class ISNetMasker:
    """The network on every ``every``-th source frame; each frame between is the two network
    maps on either side carried to it by optical flow and blended by distance, so it needs the
    next network frame before it: a second decoder reads that far ahead of the pipeline.

    ``every`` counts source frames, not the range's positions: flow carries a mask over a frame
    or two, not over the gap of a range with a step (``--frames 0:29:3`` runs the network on
    every frame it reads)."""

    name = "isnet"

    def __init__(self, checkpoint: str, clip, frame_range: FrameRange, device, cache_dir: str,
                 size: int = DEFAULT_SIZE, every: int = DEFAULT_EVERY):
        if size % 128 or size <= 0:
            raise EngineError(f"ISNet's input size must be a multiple of 128, not {size}")
        self.checkpoint, self.size = checkpoint, size
        self.every = max(1, every // max(1, frame_range.step))     # in positions of the range
        self.clip, self.frame_range = clip, frame_range
        self.device_type = getattr(device, "type", str(device))
        weights = os.path.basename(checkpoint).removesuffix(".onnx")
        self.cache = MaskCache(cache_dir, clip, frame_range, f"{weights}-{size}-{self.every}-2way", checkpoint)
        if self.cache.stored is not None:
            self.name = "isnet (cached)"
        self.session = None
        self.flow = new_flow()
        self.count = 0
        self.ahead = None               # the look-ahead decoder: (position, rgb) pairs
        self.before = self.after = None  # (position, map, flow grey) of the network frames around

    def _network_frame(self, position: int, rgb: np.ndarray) -> tuple:
        if self.session is None:
            self.session = load_session(self.checkpoint, self.device_type)
        prob = full_size_probability(self.session, rgb, self.size)
        return position, prob, flow_grey(rgb) if self.every > 1 else None

    def _next_network_frame(self, position: int):
        """The network frame at ``position`` from the look-ahead decoder, or None past the end."""
        if position >= len(self.frame_range):
            return None
        if self.ahead is None:
            self.ahead = enumerate(rgb for _, rgb, _ in self.clip.frames(self.frame_range))
        for at, rgb in self.ahead:
            if at == position:
                return self._network_frame(position, rgb)
        return None

    def __call__(self, index, rgb, alpha):
        if self.cache.stored is not None:
            return self.cache.read()
        if self.count % self.every == 0:
            if self.after is not None and self.after[0] == self.count:
                self.before = self.after
            else:
                self.before = self._network_frame(self.count, rgb)
            self.after = self._next_network_frame(self.count + self.every) if self.every > 1 else None
            prob = self.before[1]
        else:
            grey = flow_grey(rgb)
            prob = carry(self.before[1], self.before[2], grey, self.flow)
            if self.after is not None:
                share = (self.count - self.before[0]) / (self.after[0] - self.before[0])
                prob = (1 - share) * prob + share * carry(self.after[1], self.after[2], grey, self.flow)
        self.count += 1
        mask = ((prob > THRESHOLD) * 255).astype(np.uint8)
        self.cache.write(mask)
        return mask.astype(np.float32) / 255.0
