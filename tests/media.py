"""Test media made here: videos of a moving disc, and hand-made sketch files."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

SHARED_CLIPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "clips")


def write_video(path: str, frames: np.ndarray, fps: int = 24, codec: str | None = None,
                pix_fmt: str = "yuv420p", rotation: int = 0, times: list[float] | None = None,
                colour: tuple[str, str] | None = None) -> str:
    """Encode ``frames`` (T, H, W, 3 or 4) uint8 with PyAV (frames of another type are already
    in ``pix_fmt``: an EXR's floats, a DPX's 16-bit codes); ``rotation`` (degrees
    counter-clockwise) goes into the display matrix, as a phone writes a clip filmed upright;
    ``times`` (seconds) time the frames one by one, as a phone's variable frame rate does;
    ``colour`` = (matrix, range), ("bt709" or "bt601", "tv" or "pc"), converts to YUV with that
    matrix and range and tags the stream so, as cameras do."""
    from fractions import Fraction

    import av

    codec = codec or {"mp4": "libx264", "mov": "libx264", "mkv": "libx264", "webm": "libvpx-vp9",
                      "avi": "mpeg4", "gif": "gif", "exr": "exr", "dpx": "dpx"}[path.rsplit(".", 1)[1]]
    with av.open(path, "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        if colour:
            matrix, value_range = colour
            context = stream.codec_context            # ffmpeg's AVColorSpace / AVColorRange codes
            context.colorspace = context.color_primaries = context.color_trc = {"bt709": 1, "bt601": 6}[matrix]
            context.color_range = {"tv": 1, "pc": 2}[value_range]
        tick = Fraction(1, 90000)
        if times is not None:
            stream.codec_context.time_base = stream.time_base = tick
        src = pix_fmt if frames.dtype != np.uint8 else "rgba" if frames.shape[-1] == 4 else "rgb24"
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format=src)
            if colour:
                frame = frame.reformat(format=pix_fmt, dst_colorspace={"bt709": "ITU709", "bt601": "ITU601"}[matrix],
                                       dst_color_range={"tv": "MPEG", "pc": "JPEG"}[value_range])
            if times is not None:
                frame.pts, frame.time_base = round(times[i] / tick), tick
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def moving_disc(t_len: int = 12, size: tuple[int, int] = (96, 128), speed: float = 3.0,
                radius: int = 18) -> tuple[np.ndarray, np.ndarray]:
    """A textured disc moving right on a pale background: frames (T,H,W,3) and masks (T,H,W)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    frames, masks = [], []
    for t in range(t_len):
        cx, cy = 30 + speed * t, h / 2
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < radius ** 2
        stripes = ((xx - cx) // 5 % 2 == 0)
        img = np.full((h, w, 3), 235, np.uint8)
        img[inside] = np.where(stripes[inside, None], [30, 40, 160], [200, 60, 40])
        frames.append(img)
        masks.append(inside.astype(np.uint8) * 255)
    return np.stack(frames), np.stack(masks)


def numbered_frames(count: int, size: int = 64) -> np.ndarray:
    """Frames that carry their own number, read back by ``frame_number`` through a lossy codec."""
    frames = np.zeros((count, size, size, 3), np.uint8)
    for i in range(count):
        frames[i, :, :size // 2] = 20 + 10 * (i % 20)
        frames[i, :, size // 2:] = 20 + 10 * (i // 20)
    return frames


def fresh_scene(bpy, png: str, size: int = 64):
    """Blender emptied, its scene rendering ``size`` x ``size`` PNGs to ``png`` in the Standard
    view, where ``frame_number`` reads the pictures' numbers back."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.view_settings.view_transform = "Standard"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.filepath = png
    return scene


def frame_number(rgb: np.ndarray) -> int:
    h, w = rgb.shape[:2]
    low, high = (int(round((float(rgb[h // 2, x].mean()) - 20) / 10)) for x in (w // 6, w - w // 6))
    return low + 20 * high


def add_movie_as_the_ui_does(bpy, scene, path: str, frame_start: int = 1):
    """The strip Blender's Add > Movie makes with its defaults, keeping the scene's frame rate:
    Adjust Playback Rate on (not in the Python API), so it plays the movie at the movie's own
    rate. Needs a window (the factory startup has one), whose first area becomes a Sequencer."""
    window = bpy.context.window_manager.windows[0]
    if hasattr(window.workspace, "sequencer_scene"):       # 5.0 edits this scene's strips
        window.workspace.sequencer_scene = scene
    area = window.screen.areas[0]
    area.ui_type = "SEQUENCE_EDITOR"
    region = next(r for r in area.regions if r.type == "WINDOW")
    add = bpy.ops.sequencer.movie_strip_add
    still = {"move_strips": False} if "move_strips" in add.get_rna_type().properties else {}   # 5.0 moves it
    with bpy.context.temp_override(window=window, area=area, region=region, scene=scene):
        add(filepath=path, frame_start=frame_start, channel=1, sound=False, use_framerate=False, **still)
    editor = scene.sequence_editor
    return next(s for s in (editor.strips if hasattr(editor, "strips") else editor.sequences)
                if s.type == "MOVIE" and bpy.path.abspath(s.filepath) == path)


def rendered_picture(bpy, scene, frame: int, mode: str = "RGB") -> np.ndarray:
    """What ``scene`` renders at ``frame`` (written to its output path), as a Pillow ``mode``."""
    from PIL import Image
    scene.frame_set(frame)
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(bpy.path.abspath(scene.render.filepath)).convert(mode))


def rendered_number(bpy, scene, frame: int) -> int | None:
    """The number of the picture ``scene`` renders at ``frame`` (None: a black frame)."""
    rgb = rendered_picture(bpy, scene, frame)
    return frame_number(rgb) if rgb.max() > 10 else None


def shown_and_drawn(bpy, scene, sketch_object, frames) -> tuple[list, list]:
    """Over the scene ``frames`` of an edit ``scene`` with a strip sketched from a ``write_sketch``
    sketch 64 pixels wide (frame f drawn at x = 40 + f): [the picture the Sequencer shows of the
    strip (the sketch's scene strip muted), the frame whose drawing the "Sketch" layer shows
    (None: none)] at each, and the pictures the sketch scene's camera sees there (the Footage
    background), rendered with Workbench."""
    layer = sketch_object.data.layers["Sketch"]
    from dynasketch_blender.source import all_strips

    sketches = [s for s in all_strips(scene) if s.type == "SCENE"]
    for strip in sketches:
        strip.mute = True
    numbers = []
    for frame in frames:
        picture = rendered_number(bpy, scene, frame)
        keyframe = layer.get_frame_at(frame)
        drawn = None
        if keyframe is not None and len(keyframe.drawing.strokes):
            drawn = round(keyframe.drawing.strokes[0].points[0].position[0] * 32 + 32 - 40)
        numbers.append([picture, drawn])
    for strip in sketches:
        strip.mute = False
    (sketch_scene,) = sketch_object.users_scene
    sketch_scene.render.filepath = scene.render.filepath
    sketch_scene.render.engine = "BLENDER_WORKBENCH"        # EEVEE hangs without a display
    sketch_object.hide_render = True
    plane = [rendered_number(bpy, sketch_scene, frame) for frame in frames]
    sketch_object.hide_render = False
    return numbers, plane


def write_sketch(path, frames=(0, 2, 4), width=320, height=240, strokes=3, source=""):
    """A hand-made sketch.json: stroke k of frame f is a curve shifted by f pixels."""
    doc = {"format": "dynasketch.sketch", "version": 1, "width": width, "height": height, "fps": 24.0,
           "source": {"path": source, "frames": [frames[0], frames[-1] + 1, 2]}, "settings": {},
           "complete": True,
           "frames": [{"index": f, "strokes": [
               {"id": k, "points": [[40 + f, 40 + 60 * k], [100 + f, 20 + 60 * k],
                                    [160 + f, 70 + 60 * k], [260 + f, 50 + 60 * k]],
                "width": 3.0, "opacity": 1.0} for k in range(strokes)]} for f in frames]}
    with open(path, "w") as fh:
        json.dump(doc, fh)
    return doc


def shared_clip(name: str) -> str:
    path = os.path.join(SHARED_CLIPS, name)
    if not os.path.exists(path):
        pytest.skip(f"{name} not found in ../shared/clips (development clips are optional)")
    return path


def two_subjects(t_len: int = 16, size: tuple[int, int] = (180, 320)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two textured subjects on a plain floor: a striped disc moving right from the left, and a
    checked square moving left from the right, never touching. Frames (T,H,W,3) and each
    one's masks (T,H,W) bool."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    frames, discs, squares = [], [], []
    for t in range(t_len):
        img = np.full((h, w, 3), 205, np.uint8)
        img[..., 2] = 190
        dx, dy = 60 + 3 * t, h / 2 + 10
        disc = (xx - dx) ** 2 + (yy - dy) ** 2 < 32 ** 2
        img[disc] = np.where(((xx - dx) // 6 % 2 == 0)[disc, None], [40, 50, 150], [220, 80, 40])
        sx, sy = w - 90 - 3 * t, h / 2 - 10
        square = (np.abs(xx - sx) < 28) & (np.abs(yy - sy) < 28)
        checks = (((xx - sx) // 8 + (yy - sy) // 8) % 2 == 0)
        img[square] = np.where(checks[square, None], [20, 120, 40], [240, 220, 60])
        frames.append(img)
        discs.append(disc)
        squares.append(square)
    return np.stack(frames), np.stack(discs), np.stack(squares)
