"""The subject the artist picks, with Blender's own means: a box (a tracking marker's search
area in the Clip Editor, one box per keyframed marker, sent as ``--subject X,Y,W,H@FRAME``)
or a Mask datablock, rasterised per frame through the compositor's Mask node into a PNG
sequence (white subject on black, the footage's size) that the engine reads as ``--mask``.

Coordinates: a marker's position and search area are normalised to the clip's frame with y
up (``marker.co``; ``search_min``/``search_max`` relative to it); the engine's boxes are in
source pixels, origin at the top left, y down (docs/CONTRACT.md). A marker on clip frame
``f`` lies on the movie's frame ``f - 1 + clip.frame_offset`` (Blender's clip frame ``f``
plays at scene frame ``clip.frame_start + f - 1``; ``source.from_clip``), the engine's source
frame index. A mask's animation (shape keys, points parented to tracks) is in scene frames:
the mask of source frame ``i`` is the mask at the scene frame where the clip or strip shows
``i`` (``Source.scene_frame_of``).
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass

import bpy

from . import job_folders
from . import source as sources
from .source import SourceError

MASK_IMAGES = "mask_%06d.png"           # image i is the mask of source frame index i
MASK_FOLDER = "subject-mask"            # in the job folder
DIGEST_FILE = "digest.txt"
RENDER_SCENE = ".DynaSketch Mask Render"


# -- the footage's movie clip ------------------------------------------------------------------
def footage_clip(src: sources.Source):
    """The movie clip whose frames are ``src``'s: the clip being sketched, or a loaded clip of
    the same footage (a strip's movie opened in the Clip Editor: the same file, and for an
    image sequence the same first image). None when no clip holds it."""
    if src.movie_clip_name:
        return bpy.data.movieclips.get(src.movie_clip_name)
    for clip in bpy.data.movieclips:
        try:
            other = sources.from_clip(clip)
        except SourceError:
            continue
        if (other.images is None) != (src.images is None):
            continue
        if other.images is not None and other.images.start != src.images.start:
            continue
        try:
            if os.path.samefile(other.path, src.path):
                return clip
        except OSError:
            continue
    return None


def clip_index(clip, frame: int) -> int:
    """The source frame index (the movie's frame, 0-based) of the clip's frame ``frame``
    (a marker's ``frame``)."""
    return frame - 1 + clip.frame_offset


# -- Box: a tracking marker's search area ------------------------------------------------------
@dataclass(frozen=True)
class Box:
    """A box around the subject on source frame ``index``: top-left ``x, y`` and size ``w, h``
    in source pixels, y down."""

    x: int
    y: int
    w: int
    h: int
    index: int

    def argument(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}@{self.index}"

    def text(self) -> str:
        return f"{self.x},{self.y} {self.w}x{self.h}"


def search_box(co, search_min, search_max, size) -> tuple[int, int, int, int] | None:
    """A marker's search area (normalised, y up, relative to ``co``) as ``(x, y, w, h)`` in
    pixels of a frame of ``size`` (width, height), y down, cut to the frame; None when it lies
    outside the frame."""
    width, height = size
    left = max(0.0, (co[0] + search_min[0]) * width)
    right = min(float(width), (co[0] + search_max[0]) * width)
    top = max(0.0, (1.0 - (co[1] + search_max[1])) * height)
    bottom = min(float(height), (1.0 - (co[1] + search_min[1])) * height)
    x, y = math.floor(left + 1e-6), math.floor(top + 1e-6)
    w, h = math.ceil(right - 1e-6) - x, math.ceil(bottom - 1e-6) - y
    if w < 2 or h < 2:
        return None
    return x, y, w, h


def find_track(clip, name: str):
    """The track ``name`` of any of the clip's tracking objects (the camera's first); with no
    name, the clip's active track. None when there is none."""
    if not name:
        return clip.tracking.tracks.active
    for tracks in [clip.tracking.tracks] + [o.tracks for o in clip.tracking.objects]:
        track = tracks.get(name)
        if track is not None:
            return track
    return None


def track_boxes(clip, track) -> list[Box]:
    """One box per keyframed marker of ``track`` that is not disabled, in frame order: its
    search area on its source frame."""
    boxes = []
    size = tuple(clip.size)
    for marker in sorted(track.markers, key=lambda m: m.frame):
        if not marker.is_keyed or marker.mute:
            continue
        box = search_box(tuple(marker.co), tuple(marker.search_min), tuple(marker.search_max), size)
        if box is not None:
            boxes.append(Box(*box, clip_index(clip, marker.frame)))
    return boxes


def in_range(boxes: list[Box], first: int, last: int) -> list[Box]:
    """The boxes on the frames sketched, ``first`` to ``last`` (exclusive)."""
    return [box for box in boxes if first <= box.index < last]


def subject_track(settings, src: sources.Source):
    """The clip and the track Box reads; SourceError with what to do when there is none."""
    clip = footage_clip(src)
    if clip is None:
        raise SourceError("Box needs the footage as a movie clip: open it in the Clip Editor and draw the "
                          "box there with a tracking marker's search area")
    track = find_track(clip, settings.subject_track)
    if track is None:
        if settings.subject_track:
            raise SourceError(f"Box: {clip.name} has no track named {settings.subject_track!r}: "
                              "choose one of its tracks under Subject")
        raise SourceError(f"Box: choose a track of {clip.name} whose search area frames the subject "
                          "(Clip Editor: Ctrl+click adds a marker; drag its search area around the subject)")
    return clip, track


def box_arguments(settings, src: sources.Source, first: int, last: int) -> list[str]:
    """The engine's ``--mask auto --subject X,Y,W,H@FRAME ...`` for the Box subject and the
    source frames ``first`` to ``last`` (exclusive)."""
    clip, track = subject_track(settings, src)
    boxes = track_boxes(clip, track)
    if not boxes:
        raise SourceError(f"Box: track {track.name} has no keyframed, enabled marker with its search area "
                          "in the frame: place one on the subject")
    sent = in_range(boxes, first, last)
    if not sent:
        a, b = sorted((src.scene_frame_of(first), src.scene_frame_of(last - 1)))
        keyed = ", ".join(str(src.scene_frame_of(box.index)) for box in boxes[:6])
        raise SourceError(f"Box: track {track.name} has no keyframed marker in the frames sketched "
                          f"({a}-{b}; its keys are on frames {keyed}): key one there")
    options = ["--mask", "auto"]
    for box in sent:
        options += ["--subject", box.argument()]
    return options


def describe_box(settings, context) -> str:
    """One line for the panel: the boxes Box would send, or why none."""
    try:
        src = sources.from_context(context)
        clip, track = subject_track(settings, src)
    except SourceError as exc:
        return str(exc).removeprefix("Box: ")
    boxes = track_boxes(clip, track)
    if not boxes:
        return f"{track.name}: no keyframed marker in the frame"
    first = boxes[0]
    keys = f"{len(boxes)} key{'s' * (len(boxes) != 1)}"
    return f"{track.name}: {keys}, frame {src.scene_frame_of(first.index)}: {first.text()}"


def track_owner(context):
    """The tracking object whose tracks the panel's track field offers, or None."""
    try:
        clip = footage_clip(sources.from_context(context))
    except SourceError:
        return None
    return clip.tracking.objects.active if clip is not None else None


# -- Blender Mask: a Mask datablock rasterised per frame ------------------------------------------
def check_mask(mask) -> None:
    """A mask that would render nothing at all is refused (one line). A mask that is empty on
    some frames is allowed: the engine notes it."""
    if mask is None:
        raise SourceError("Blender Mask: choose a Mask under Subject (draw one in the Clip Editor's Mask mode)")
    shown = [layer for layer in mask.layers if not layer.hide_render]
    if not any(len(spline.points) for layer in shown for spline in layer.splines):
        why = "no visible layer" if not shown else "no shape"
        raise SourceError(f"Blender Mask: {mask.name} has {why} to render: draw the subject's outline in "
                          "the Clip Editor's Mask mode (and show its layer in renders)")


def footage_size(src: sources.Source) -> tuple[int, int]:
    """The footage's frame size in pixels, as Blender reads it: from its movie clip, else from
    the file opened as a clip for the moment."""
    clip = footage_clip(src)
    if clip is not None and clip.size[0] > 0:
        return int(clip.size[0]), int(clip.size[1])
    known = {c.as_pointer() for c in bpy.data.movieclips}
    try:
        clip = bpy.data.movieclips.load(src.path, check_existing=True)
    except RuntimeError:
        raise SourceError(f"{src.label}: Blender cannot read {src.path}") from None
    size = int(clip.size[0]), int(clip.size[1])
    if clip.as_pointer() not in known:
        bpy.data.movieclips.remove(clip)
    if size[0] <= 0:
        raise SourceError(f"{src.label}: Blender cannot read the size of {src.path}")
    return size


def blank_png(width: int, height: int) -> bytes:
    """An all-black 8-bit greyscale PNG (standard library only)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes(width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def png_data(path: str) -> bytes:
    """A PNG's header and image data, without its text chunks (a render's time, say)."""
    with open(path, "rb") as f:
        data = f.read()
    kept, at = [], 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind in (b"IHDR", b"PLTE", b"IDAT"):
            kept.append(data[at + 8:at + 8 + length])
        at += 12 + length
    return b"".join(kept)


@dataclass
class MaskRaster:
    """A mask rendered into ``staging`` (``MASK_IMAGES``, image i for source frame i, from 0
    on), named by ``digest``, the images' content: the same mask renders the same digest, so
    the same job resumes. ``place`` moves it into the job folder."""

    staging: str
    digest: str
    count: int

    def key(self) -> list[str]:
        """What stands for the mask in the job's settings (the job folder's name)."""
        return ["--mask", f"blender-mask:{self.digest}"]

    @staticmethod
    def arguments(folder: str) -> list[str]:
        pattern = os.path.join(folder.replace("%", "%%"), MASK_IMAGES)
        return ["--mask", pattern, "--mask-start-number", "0"]

    def place(self, folder: str) -> None:
        """The images into ``folder``; images already there with the same digest stay as they
        are (their times too: the engine's resume check compares them)."""
        try:
            with open(os.path.join(folder, DIGEST_FILE), encoding="utf-8") as f:
                same = f.read().strip() == self.digest
        except OSError:
            same = False
        if same:
            self.discard()
            return
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        shutil.move(self.staging, folder)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _compositor(scene, mask):
    """A compositor in ``scene`` whose output is ``mask`` rasterised at the render size; the
    node group it made (Blender 5.0), to remove afterwards, or None (4.5: the scene's own)."""
    if hasattr(scene, "compositing_node_group"):          # Blender 5.0: a node group, a Group Output
        tree = bpy.data.node_groups.new(".DynaSketch Mask", "CompositorNodeTree")
        scene.compositing_node_group = tree
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        output = tree.nodes.new("NodeGroupOutput")
    else:                                                  # Blender 4.5: the scene's tree, a Composite node
        scene.use_nodes = True
        tree = scene.node_tree
        tree.nodes.clear()
        output = tree.nodes.new("CompositorNodeComposite")
    node = tree.nodes.new("CompositorNodeMask")
    node.mask = mask
    tree.links.new(node.outputs[0], output.inputs[0])
    return tree if hasattr(scene, "compositing_node_group") else None


def _settings_for_mask(scene, size) -> None:
    render = scene.render
    render.resolution_x, render.resolution_y = size
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.use_compositing, render.use_sequencer = True, False
    render.dither_intensity = 0.0
    render.use_border = False
    if hasattr(render, "compositor_device"):
        render.compositor_device = "CPU"
    image = render.image_settings
    image.file_format, image.color_mode, image.color_depth = "PNG", "BW", "8"
    render.use_file_extension = True
    for name in render.bl_rna.properties.keys():          # no metadata: the same mask, the same files
        if name.startswith("use_stamp"):
            setattr(render, name, False)
    for view in ("Raw", "Standard"):                       # mask values as they are, 1.0 = white
        try:
            scene.view_settings.view_transform = view
            break
        except TypeError:
            continue
    scene.view_settings.look = "None"
    scene.view_settings.exposure, scene.view_settings.gamma = 0.0, 1.0
    scene.view_settings.use_curve_mapping = False


def rasterise_mask(mask, src: sources.Source, first: int, last: int, work_dir: str) -> MaskRaster:
    """Render ``mask`` for the source frames ``first`` to ``last`` (exclusive) through the
    compositor's Mask node, in a scene of its own (the user's scenes and their settings are
    not touched), as white subject on black at the footage's size: ``MASK_IMAGES`` from
    image 0 (the frames before ``first`` one blank image, hard-linked) to ``last - 1``."""
    check_mask(mask)
    size = footage_size(src)
    scene_frames = {index: src.scene_frame_of(index) for index in range(first, last)}
    lo, hi = min(scene_frames.values()), max(scene_frames.values())
    if lo < 0:
        raise SourceError(f"Blender Mask: {src.label} plays before scene frame 0 (from {lo}), where Blender "
                          "cannot render a mask: move it to later frames")
    os.makedirs(work_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=job_folders.STAGING, dir=work_dir)
    rendered = os.path.join(staging, "rendered")
    images = {image.as_pointer() for image in bpy.data.images}
    scene = bpy.data.scenes.new(RENDER_SCENE)
    tree = None
    try:
        _settings_for_mask(scene, size)
        tree = _compositor(scene, mask)
        scene.frame_start, scene.frame_end, scene.frame_step = lo, hi, 1
        scene.frame_current = lo
        scene.render.filepath = os.path.join(rendered, "f_")
        # An animation render evaluates the mask at each frame (a still render would not).
        result = bpy.ops.render.render(animation=True, scene=scene.name)
        if "FINISHED" not in result:
            raise SourceError(f"Blender Mask: rendering {mask.name} failed")
        paths = {frame: scene.render.frame_path(frame=frame) for frame in range(lo, hi + 1)}
    except RuntimeError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise SourceError(f"Blender Mask: rendering {mask.name} failed: {str(exc).strip()}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        bpy.data.scenes.remove(scene)
        if tree is not None:
            bpy.data.node_groups.remove(tree)
        for image in [i for i in bpy.data.images if i.as_pointer() not in images]:
            if image.type in ("RENDER_RESULT", "COMPOSITING"):      # the render's, and 4.5's Viewer Node
                bpy.data.images.remove(image)
    try:
        digest = _collect(staging, rendered, scene_frames, paths, size, first)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise SourceError(f"Blender Mask: cannot write the mask images in {work_dir} ({exc.strerror or exc}); "
                          "choose another Work Folder in the add-on preferences") from None
    return MaskRaster(staging, digest, last)


def _collect(staging: str, rendered: str, scene_frames: dict, paths: dict, size, first: int) -> str:
    """Name the rendered images by source frame index, the frames before ``first`` one blank
    image; the digest of them all."""
    def image(index: int) -> str:
        return os.path.join(staging, MASK_IMAGES % index)

    digest = hashlib.sha256(f"{size[0]}x{size[1]}:{first}".encode())
    if first > 0:
        blank = os.path.join(staging, "blank.png")
        with open(blank, "wb") as f:
            f.write(blank_png(*size))
        for index in range(first):
            try:
                os.link(blank, image(index))
            except OSError:
                shutil.copyfile(blank, image(index))
        os.remove(blank)
    used = {}
    for index, frame in sorted(scene_frames.items()):
        path = paths[frame]
        if path in used:                      # a strip that skips this frame: the next one shown
            shutil.copyfile(used[path], image(index))
        else:
            os.replace(path, image(index))
            used[path] = image(index)
        digest.update(png_data(image(index)))
    shutil.rmtree(rendered, ignore_errors=True)
    digest = digest.hexdigest()[:16]
    with open(os.path.join(staging, DIGEST_FILE), "w", encoding="utf-8") as f:
        f.write(digest + "\n")
    return digest
