"""Decoding: video files through PyAV, image sequences through Pillow (EXR and DPX through
PyAV), streamed frame by frame.

``open_video(path)`` returns a ``VideoSource``; ``source.frames(FrameRange)`` yields
``(index, rgb, alpha)`` with ``rgb`` ``(H, W, 3) uint8`` and ``alpha`` ``(H, W) uint8`` or
``None``. Nothing holds more than one decoded frame, so a 4K or 10 000-frame clip streams.
A video's display rotation (a phone's portrait clip) is applied, as players and Blender do.
Footage tagged with a colour space other than the file's default is converted into the picture
Blender shows for it (``open_video(colour=...)``, ``engine/colour.py``).
"""
from __future__ import annotations

import glob
import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from .colour import ShownColours
from .errors import EngineError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".exr", ".dpx")
FFMPEG_IMAGES = (".exr", ".dpx")          # read through ffmpeg (PyAV); the others through Pillow
_ALPHA_FORMATS = ("rgba", "bgra", "argb", "abgr", "ya8", "ya16", "pal8")


@dataclass(frozen=True)
class FrameRange:
    """Source frame indices ``range(start, stop, step)``: stop is exclusive, like a slice."""

    start: int
    stop: int
    step: int = 1

    def indices(self) -> range:
        return range(self.start, self.stop, self.step)

    def __len__(self) -> int:
        return len(self.indices())

    def as_list(self) -> list[int]:
        return [self.start, self.stop, self.step]


def parse_frame_range(text: str | None, frame_count: int) -> FrameRange:
    """Parse ``START:END[:STEP]`` (either side may be empty) against a clip's length."""
    if text in (None, "", ":"):
        return FrameRange(0, frame_count, 1)
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise EngineError(f"--frames {text!r}: expected START:END or START:END:STEP, e.g. 0:48")
    try:
        start, stop = (int(p) if p.strip() else None for p in parts[:2])
        step = int(parts[2]) if len(parts) == 3 and parts[2].strip() else 1
    except ValueError:
        raise EngineError(f"--frames {text!r}: START, END and STEP must be whole numbers") from None
    if step <= 0:
        raise EngineError(f"--frames {text!r}: STEP must be 1 or more")
    start = 0 if start is None else start
    stop = frame_count if stop is None else stop
    if start < 0 or stop < 0:
        raise EngineError(f"--frames {text!r}: negative frame numbers are not supported")
    if start >= frame_count:
        raise EngineError(f"--frames {text!r}: the clip has {frame_count} frames (0 to {frame_count - 1})")
    if stop > frame_count:
        raise EngineError(f"--frames {text!r}: END is past the clip's last frame; "
                          f"it has {frame_count} frames, so END can be at most {frame_count}")
    if stop <= start:
        raise EngineError(f"--frames {text!r}: the range is empty (END must be greater than START)")
    return FrameRange(start, stop, step)


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frame_count: int
    has_alpha: bool


class VideoSource:
    """A clip that can be streamed; see ``open_video``."""

    info: VideoInfo
    files: list[str]
    colour: ShownColours | None = None       # the colour space the footage is converted from

    def identity(self) -> list:
        """Changes when the clip's files change (size or modification time), or the colour
        space it is read in."""
        ends = self.files if len(self.files) <= 2 else [self.files[0], self.files[-1]]
        stats = [os.stat(f) for f in ends]
        colour = [self.colour.identity()] if self.colour is not None else []
        return [len(self.files)] + [[s.st_size, s.st_mtime_ns] for s in stats] + colour

    def frames(self, frame_range: FrameRange) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        raise NotImplementedError


class MovieFile(VideoSource):
    """A video file decoded with PyAV (ffmpeg), frame for frame as Blender shows it.

    Frame ``k`` is the picture Blender shows at the clip's frame ``k``: the last one whose
    timestamp is at or before the stream's start plus ``k`` frame durations, at the frame rate
    ffmpeg guesses for the stream. A variable-frame-rate clip (most phones record one) keeps the
    sketch on the footage Blender plays: a dropped frame shows the one before it twice, as in
    Blender. The length is Blender's too: the stream's duration times that rate.
    """

    def __init__(self, path: str):
        import av

        try:
            with av.open(path) as container:
                if not container.streams.video:
                    raise EngineError(f"{path}: the file has no video stream")
                stream = container.streams.video[0]
                fmt = stream.codec_context.format
                width, height = stream.codec_context.width, stream.codec_context.height
                rate = Fraction(stream.guessed_rate or stream.average_rate or 24)
                self.start = stream.start_time or 0
                self.ticks = 1 / (rate * stream.time_base)          # time-base ticks per frame
                count = _timeline_length(container, stream, rate)
                turns = _quarter_turns(next(container.decode(stream), None))
                self.alpha_decoder = _alpha_decoder(stream)
        except EngineError:
            raise
        except Exception as exc:  # PyAV raises many kinds; all mean "not a readable video"
            raise EngineError(f"{path}: not a readable video ({_reason(exc)})") from None
        if count <= 0 or not width or not height:
            raise EngineError(f"{path}: the video has no frames")
        self.path = path
        self.files = [path]
        self.turns = turns
        if turns % 2:
            width, height = height, width
        has_alpha = self.alpha_decoder is not None or (
            fmt is not None and fmt.name.startswith(_ALPHA_FORMATS + ("yuva", "gbrap")))
        self.info = VideoInfo(path, width, height, float(rate), int(count), has_alpha)

    def _time_of(self, index: int) -> int:
        """The timestamp Blender looks for at frame ``index``, in the stream's time base."""
        return self.start + _round_half_up(index * self.ticks)

    def frames(self, frame_range: FrameRange):
        import av

        slots = iter(frame_range.indices())
        index = next(slots, None)
        if index is None:
            return
        fmt = "rgba" if self.info.has_alpha else "rgb24"
        held, pts = None, None               # the last frame at or before frame `index`'s time
        picture = None                       # (frame, its arrays) of the last frame yielded
        try:
            with av.open(self.path) as container:
                for frame in self._decode(container):
                    pts = frame.pts if frame.pts is not None else (
                        self.start if pts is None else pts + _round_half_up(self.ticks))
                    while index is not None and pts > self._time_of(index):
                        picture = self._picture(held if held is not None else frame, picture, fmt, index)
                        yield (index, *picture[1])
                        index = next(slots, None)
                    if index is None:
                        return
                    held = frame
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"{self.path}: decoding failed at frame {index} "
                              f"({_reason(exc)}); the file may be damaged") from None
        if held is None:
            raise EngineError(f"{self.path}: no frame could be decoded; the file may be damaged")
        while index is not None:             # past the last frame Blender shows the last frame
            picture = self._picture(held, picture, fmt, index)
            yield (index, *picture[1])
            index = next(slots, None)

    def _picture(self, frame, last, fmt: str, index: int):
        """``(frame, arrays)`` for ``frame``; a frame shown again (a dropped frame's slot) is
        converted once and copied, so no two yielded arrays are one."""
        if last is not None and last[0] is frame:
            return frame, tuple(None if a is None else a.copy() for a in last[1])
        return frame, self._arrays(frame, fmt, index)

    def _decode(self, container):
        """The video stream's frames; a VP8/VP9 clip with alpha through libvpx, whose decoder
        reads the alpha channel that ffmpeg's own drops (Blender does the same)."""
        import av

        stream = container.streams.video[0]
        if self.alpha_decoder is None:
            stream.thread_type = "AUTO"
            yield from container.decode(stream)
            return
        decoder = av.CodecContext.create(self.alpha_decoder, "r")
        decoder.extradata = stream.codec_context.extradata
        decoder.width, decoder.height = stream.codec_context.width, stream.codec_context.height
        decoder.thread_type = "AUTO"
        for packet in container.demux(stream):
            yield from decoder.decode(packet if packet.size else None)

    def _arrays(self, frame, fmt: str, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        data = _shown_bytes(np.rot90(frame.to_ndarray(format=fmt), self.turns), self.colour)
        if data.shape[:2] != (self.info.height, self.info.width):
            raise EngineError(f"{self.path}: frame {index} changes size; re-encode the clip at one size")
        if self.info.has_alpha:
            return np.ascontiguousarray(data[..., :3]), np.ascontiguousarray(data[..., 3])
        return np.ascontiguousarray(data), None


class ImageSequence(VideoSource):
    """A folder of images, or a printf pattern such as ``frame_%04d.png``."""

    def __init__(self, files: list[str], fps: float, label: str):
        if not files:
            raise EngineError(f"{label}: no images found (expected {', '.join(IMAGE_EXTENSIONS)})")
        self.files = files
        first = _read_image(files[0])
        height, width, channels = first.shape
        self.info = VideoInfo(label, width, height, float(fps), len(files), channels == 4)

    def frames(self, frame_range: FrameRange):
        for index in frame_range.indices():
            path = self.files[index]
            data = _read_image(path, 4 if self.info.has_alpha else 3, self.colour)
            if data.shape[:2] != (self.info.height, self.info.width):
                raise EngineError(f"{path}: image size differs from the first image of the sequence")
            if self.info.has_alpha:
                yield index, np.ascontiguousarray(data[..., :3]), np.ascontiguousarray(data[..., 3])
            else:
                yield index, data, None


def _read_image(path: str, channels: int | None = None, colour: ShownColours | None = None) -> np.ndarray:
    """An image as ``(H, W, 3 or 4) uint8``: RGB or RGBA as it holds (or ``channels``), shown
    from ``colour``'s colour space. Pillow reads the common formats; ffmpeg reads EXR and DPX
    (``_ffmpeg_image``)."""
    try:
        if path.lower().endswith(FFMPEG_IMAGES):
            data = _ffmpeg_image(path, colour)
        else:
            data = _shown_bytes(_pillow_image(path), colour)
    except Exception as exc:
        raise EngineError(f"{path}: not a readable image ({_reason(exc)})") from None
    if channels == 4 and data.shape[2] == 3:
        data = np.dstack([data, np.full(data.shape[:2], 255, np.uint8)])
    return data if channels in (None, data.shape[2]) else np.ascontiguousarray(data[..., :channels])


def _pillow_image(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        return np.asarray(im.convert("RGBA" if alpha else "RGB"))


def _shown_bytes(data: np.ndarray, colour: ShownColours | None) -> np.ndarray:
    """An ``(H, W, 3 or 4) uint8`` picture (RGB, then alpha if any) shown from ``colour``'s
    colour space; as it is where that is the default for bytes (or no colour space is given)."""
    if colour is None or not colour.converts(floating=False):
        return data
    shown = colour.shown(data[..., :3] / np.float32(255))
    return np.dstack([shown, data[..., 3:]]) if data.shape[2] == 4 else shown


def _ffmpeg_image(path: str, colour: ShownColours | None = None) -> np.ndarray:
    """An EXR or DPX image. Blender reads both as linear light (its colour space for them is
    Linear Rec.709) and shows them through the sRGB curve; so does this. Tagged with another
    colour space (``colour``: an ACEScg render, a log scan), its values are shown from that."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        if path.lower().endswith(".exr"):
            stream.codec_context.options = {"layer": _exr_layer(path)}
        frame = next(container.decode(stream))
    alpha = len(frame.format.components) in (2, 4)
    if "f32" in frame.format.name or "f16" in frame.format.name:                   # EXR: float
        linear = np.nan_to_num(frame.to_ndarray(format="gbrapf32le" if alpha else "gbrpf32le"))
    else:                                                                         # DPX: 8-16 bit codes
        linear = frame.to_ndarray(format="rgba64le" if alpha else "rgb48le") / np.float32(65535)
    alphas = [np.round(np.clip(linear[..., 3:], 0, 1) * 255).astype(np.uint8)] if alpha else []
    if colour is not None and colour.converts(floating=True):
        return np.dstack([colour.shown(linear[..., :3])] + alphas)
    rgb = np.clip(linear[..., :3], 0, 1)
    shown = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * rgb ** (1 / 2.4) - 0.055)
    return np.dstack([np.round(shown * 255).astype(np.uint8)] + alphas)


def _exr_layer(path: str) -> str:
    """The channel layer to decode from an EXR: "" for a plain image (channels R, G, B, A);
    for a multilayer render (channels such as ``ViewLayer.Combined.R``) the Combined pass of
    the file's first layer, else that layer's first colour pass, which is what Blender shows.
    The layers come in the file's order: Blender 4.x sorts them by name, 5.x keeps the view
    layers' order; ffmpeg reads the first part of a multi-part file, where 5.x puts it."""
    names = _exr_channels(path)
    if not names or any("." not in name for name in names):
        return ""
    layers: dict[str, set[str]] = {}
    for name in names:
        layer, channel = name.rsplit(".", 1)
        layers.setdefault(layer, set()).add(channel.upper())
    colour = [layer for layer, channels in layers.items() if {"R", "G", "B"} <= channels]
    if not colour:
        raise ValueError(f"no colour pass, only {', '.join(names[:8])}; render it with the Combined pass")
    first = names[0].rsplit(".", 2)[0] if names[0].count(".") >= 2 else ""
    own = [layer for layer in colour if first and layer.startswith(first + ".")]
    return next((layer for layer in own if layer.endswith(".Combined")), (own or colour)[0])


def _exr_channels(path: str) -> list[str]:
    """The channel names of an EXR's (first part's) header, in the file's order; [] when the
    header cannot be parsed, so that ffmpeg's own error is the one shown."""
    import struct

    with open(path, "rb") as f:
        head = f.read(1 << 20)
    if head[:4] != b"\x76\x2f\x31\x01":
        return []
    pos = 8
    try:
        while head[pos] != 0:
            name_end = head.index(b"\0", pos)
            type_end = head.index(b"\0", name_end + 1)
            (size,) = struct.unpack_from("<i", head, type_end + 1)
            value = head[type_end + 5:type_end + 5 + size]
            pos = type_end + 5 + size
            if head[name_end + 1:type_end] == b"chlist":
                names, at = [], 0
                while value[at] != 0:            # name, then type, linear, reserved, x/y sampling
                    end = value.index(b"\0", at)
                    names.append(value[at:end].decode("utf-8", "replace"))
                    at = end + 17
                return names
    except (IndexError, ValueError, struct.error):
        pass
    return []


def open_video(path: str, fps: float | None = None, start_number: int | None = None,
               colour: ShownColours | None = None) -> VideoSource:
    """Open a video file, an image folder or an image pattern; errors are ``EngineError``.

    A pattern (``frame_%04d.png``: a number field in the file name, ``%%`` for a literal ``%``)
    takes every image it matches, in number order; with ``start_number`` it takes the images
    numbered from there up to the first missing number, as Blender and ffmpeg read a sequence.
    A file that exists is that file, whatever its name holds. ``colour``: the colour space the
    footage is tagged with (``--colorspace``); frames are shown from it."""
    source = _open_source(path, fps, start_number)
    floating = source.files[0].lower().endswith(FFMPEG_IMAGES)
    if colour is not None and colour.converts(floating):
        source.colour = colour
    return source


def _open_source(path: str, fps: float | None, start_number: int | None) -> VideoSource:
    pattern = is_pattern(path)
    if start_number is not None and not pattern:
        raise EngineError(f"--start-number needs an image pattern such as frame_%04d.png, not {path}")
    if pattern:
        files = _numbered_run(path, start_number) if start_number is not None else _pattern_files(path)
        return ImageSequence(files, fps or 24.0, path)
    if not os.path.exists(path):
        raise EngineError(f"input not found: {path} (check the path)")
    if os.path.isdir(path):
        files = sorted((os.path.join(path, f) for f in os.listdir(path)
                        if f.lower().endswith(IMAGE_EXTENSIONS)), key=_natural_key)
        return ImageSequence(files, fps or 24.0, path)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return ImageSequence([path], fps or 24.0, path)
    source = MovieFile(path)
    if fps:
        source.info = VideoInfo(**{**source.info.__dict__, "fps": float(fps)})
    return source


def is_pattern(path: str) -> bool:
    """An image pattern: no such file, and a number field (``%d``, ``%04d``) in the file name."""
    return not os.path.exists(path) and _split_pattern(path) is not None


def _alpha_decoder(stream) -> str | None:
    """libvpx's decoder for a VP8/VP9 stream marked as carrying alpha (``alpha_mode=1``),
    where this PyAV has it; None otherwise."""
    import av

    tags = {key.lower(): value for key, value in stream.metadata.items()}
    name = {"vp8": "libvpx", "vp9": "libvpx-vp9"}.get(stream.codec_context.name)
    if name and tags.get("alpha_mode") == "1" and name in av.codecs_available:
        return name
    return None


def _timeline_length(container, stream, rate: Fraction) -> int:
    """The clip's length in frames, as Blender counts it: the video stream's duration at
    ``rate``; without one, the file's duration less the video's late start after the audio."""
    if stream.duration is not None:
        return _round_half_up(stream.duration * stream.time_base * rate)
    if container.duration is not None:
        def start(s):
            return s.start_time * s.time_base if s.start_time is not None else 0
        audio = container.streams.audio
        late = max(0, start(stream) - (start(audio[0]) if audio else 0))
        return _round_half_up((Fraction(container.duration, 1_000_000) - late) * rate)
    return stream.frames or sum(1 for p in container.demux(stream) if p.size)


def _round_half_up(x) -> int:
    return math.floor(x + Fraction(1, 2))


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that show ``frame`` upright (its display matrix)."""
    rotation = getattr(frame, "rotation", 0) or 0
    return round(rotation / 90) % 4


def _split_pattern(pattern: str) -> tuple[str, str, str] | None:
    """``folder/head%04dtail`` -> (``folder/head``, ``%04d``, ``tail``) with ``%%`` read as
    ``%``; None when the file name has no number field, or more than one."""
    folder, name = os.path.split(pattern)
    parts = re.split(r"(%%|%0?\d*d)", name)
    fields = [i for i in range(1, len(parts), 2) if parts[i] != "%%"]
    if len(fields) != 1:
        return None
    field = fields[0]

    def literal(pieces):
        return "".join("%" if p == "%%" else p for p in pieces)
    return os.path.join(folder, literal(parts[:field])), parts[field], literal(parts[field + 1:])


def _pattern_files(pattern: str) -> list[str]:
    """Every image ``pattern`` matches, in number order."""
    head, _, tail = _split_pattern(pattern)
    _check_folder(head)
    regex = re.compile(re.escape(os.path.basename(head)) + r"(\d+)" + re.escape(tail) + "$")
    found = []
    for name in glob.glob(glob.escape(head) + "*" + glob.escape(tail)):
        m = regex.match(os.path.basename(name)) if os.path.dirname(name) == os.path.dirname(head) else None
        if m:
            found.append((int(m.group(1)), name))
    return [name for _, name in sorted(found)]


def _numbered_run(pattern: str, start: int) -> list[str]:
    """The images ``pattern`` names from number ``start`` up to the first missing one."""
    head, field, tail = _split_pattern(pattern)
    _check_folder(head)
    files, number = [], start
    while os.path.isfile(name := head + field % number + tail):
        files.append(name)
        number += 1
    if not files:
        raise EngineError(f"{pattern}: no image numbered {start} ({head + field % start + tail} is missing)")
    return files


def _check_folder(head: str) -> None:
    folder = os.path.dirname(head) or "."
    if not os.path.isdir(folder):
        raise EngineError(f"input not found: {folder} (check the path)")


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
