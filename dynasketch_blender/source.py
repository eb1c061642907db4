"""What is being sketched: the active movie clip (Clip Editor) or movie, image or clip strip
(Sequencer), with the mapping from its source frame indices to scene frames."""
from __future__ import annotations

import bisect
import math
import operator
import os
import re
import struct
from dataclasses import dataclass

import bpy


class SourceError(Exception):
    pass


@dataclass(frozen=True)
class NumberedImages:
    """Images numbered as Blender numbers a sequence: by the last run of digits before the
    file's extension (``shot_0004.png``: number 4, four digits)."""

    folder: str
    head: str
    digits: int
    tail: str
    start: int                # the number of the chosen image, where Blender starts

    @classmethod
    def of(cls, path: str) -> NumberedImages | None:
        folder, name = os.path.split(path)
        stem, ext = os.path.splitext(name)
        match = re.fullmatch(r"(.*?)(\d+)(\D*)", stem)
        if match is None:
            return None
        return cls(folder, match[1], len(match[2]), match[3] + ext, int(match[2]))

    def file(self, number: int) -> str:
        return os.path.join(self.folder, f"{self.head}{number:0{self.digits}d}{self.tail}")

    def pattern(self) -> str:
        """The engine's image pattern (docs/CONTRACT.md): ``%%`` is a ``%`` of the name."""
        def escape(text):
            return text.replace("%", "%%")
        return os.path.join(self.folder, f"{escape(self.head)}%0{self.digits}d{escape(self.tail)}")


@dataclass
class Source:
    key: str                  # identifies the clip or strip; a re-run replaces its old result
    label: str
    path: str                 # absolute path of the movie file, or of an image sequence's first image
    scene_name: str           # the scene whose timeline the frames are placed on
    offset: int               # scene frame = offset + source index (reversed: offset - index)
    default_range: tuple      # source indices (start, end exclusive) the clip or strip shows
    movie_clip_name: str = ""
    reversed: bool = False
    images: NumberedImages | None = None    # an image sequence: index 0 is image images.start
    fps: float = 0.0                        # images (a sequence or a still): the scene's rate; 0: a movie
    # a strip with a handle dragged past its content holds the content's first (last) picture
    # there: (the strip's first (last) scene frame, the scene frame of the picture it holds)
    held_before: tuple[int, int] | None = None
    held_after: tuple[int, int] | None = None
    # a movie strip playing its movie at the movie's own frame rate skips or repeats pictures:
    # the source index it shows at each scene frame it shows, from scene frame ``offset`` on
    playback: tuple[int, ...] = ()
    # a strip: the scene frames between its handles; the Sequencer shows nothing of it outside
    span: tuple[int, int] | None = None
    strip_name: str = ""                    # a strip: its name in the scene ``scene_name`` (the edit)
    colorspace: str = ""                    # the colour space Blender reads the footage in

    def engine_input(self) -> list[str]:
        """The engine's INPUT, and the options that say how to read it (docs/CONTRACT.md)."""
        colour = []
        if self.colorspace:                 # the engine reads it as Blender does (engine/colour.py)
            config = ocio_config()
            colour = ["--colorspace", self.colorspace] + (["--ocio-config", config] if config else [])
        if self.images is not None:
            return [self.images.pattern(), "--start-number", str(self.images.start), "--fps", f"{self.fps:g}",
                    *colour]
        if self.fps:
            return [self.path, "--fps", f"{self.fps:g}", *colour]
        return [self.path, *colour]

    def files(self) -> list[str]:
        """The files the frames it shows are read from."""
        if self.images is None:
            return [self.path]
        return [self.images.file(self.images.start + i) for i in range(*self.default_range)]

    def footage_kind(self) -> str:
        """The footage as a Blender image's source: "MOVIE", "SEQUENCE" or "FILE" (one image)."""
        if self.images is None and not self.fps:
            return "MOVIE"
        return "SEQUENCE" if self.images is not None and self.default_range[1] > 1 else "FILE"

    def footage_pictures(self) -> tuple[int, list[int]]:
        """What the footage plane shows (``scene_setup.new_footage_plane``): the first scene frame
        the clip or strip shows, and from there on, frame by frame, its picture there (a movie's
        frame counted from 1, or an image's number)."""
        first, last = self.scene_range()
        base = 1 if self.images is None else self.images.start
        return first, [base + self.index_at(frame) for frame in range(first, last + 1)]

    def drawn_span(self, indices, through: int | None = None) -> tuple[int, int]:
        """The scene frames the drawings of the source frames ``indices`` are seen over: from
        the first one's keyframe to the last frame that shows the last one's picture, and where
        the strip holds the picture of its first (last) one past its content, there too.
        ``through``: the last source frame of a range sketched every few frames, also covered
        (its picture plays last, or, reversed, first)."""
        first_index, last_index = (max(indices), min(indices)) if self.reversed else (min(indices), max(indices))
        if through is not None:
            through = min(through, self.default_range[1] - 1)
            first_index, last_index = ((max(first_index, through), last_index) if self.reversed
                                       else (first_index, max(last_index, through)))
        first, last = self.scene_frame_of(first_index), self._last_showing(last_index)
        before, after = self.held_before, self.held_after
        return (before[0] if before and before[1] == first else first,
                after[0] if after and after[1] == last else last)

    def keyframes(self, indices) -> dict[int, int]:
        """Where the drawings of the source frames ``indices`` go: {scene frame: index}. A frame
        the strip skips goes where the next picture it shows is, unless that one is drawn too."""
        placed = {}
        for index in sorted(indices, reverse=self.reversed):        # in the order they play
            placed[self.scene_frame_of(index)] = index
        return placed

    def scene_frame_of(self, index: int) -> int:
        """The first scene frame that shows source frame ``index`` (or, for one the strip
        skips, the next picture it shows)."""
        if self.playback:
            return self.offset + self._played_before(index)
        return self.offset - index if self.reversed else self.offset + index

    def _last_showing(self, index: int) -> int:
        if self.playback:
            return self.offset + self._played_before(index, also=True) - 1
        return self.scene_frame_of(index)

    def _played_before(self, index: int, also: bool = False) -> int:
        """How many scene frames of ``playback`` show pictures played before ``index`` (also:
        or ``index`` itself)."""
        find = bisect.bisect_right if also else bisect.bisect_left
        if self.reversed:
            return find(self.playback, -index, key=operator.neg)
        return find(self.playback, index)

    def source_range(self, scene_start: int, scene_end: int) -> tuple:
        """Scene frames (inclusive) -> source indices (start, end exclusive), within what
        the clip or strip shows."""
        a, b = self.scene_range()
        lo, hi = max(a, scene_start), min(b, scene_end)
        if hi < lo:
            raise SourceError(f"frames {scene_start}-{scene_end} lie outside {self.label} "
                              f"(it plays at scene frames {a}-{b})")
        first, last = sorted((self.index_at(lo), self.index_at(hi)))
        return first, last + 1

    def index_at(self, scene_frame: int) -> int:
        if self.playback:
            return self.playback[min(max(scene_frame - self.offset, 0), len(self.playback) - 1)]
        return self.offset - scene_frame if self.reversed else scene_frame - self.offset

    def scene_range(self) -> tuple:
        """The scene frames (first, last) where the default range plays."""
        if self.playback:
            return self.offset, self.offset + len(self.playback) - 1
        ends = (self.scene_frame_of(self.default_range[0]), self.scene_frame_of(self.default_range[1] - 1))
        return min(ends), max(ends)


def _check_file(path: str, label: str, what: str = "movie file", owner=None) -> str:
    """``path`` made absolute as Blender reads it: a path starting with // is relative to the
    .blend file ``owner`` (the clip or the strip's scene) comes from, linked or not."""
    path = os.path.abspath(bpy.path.abspath(path, library=getattr(owner, "library", None)))
    if not os.path.isfile(path):
        raise SourceError(f"{label}: the {what} is missing ({path})")
    return path


def mask_input(path: str) -> tuple[list[str], list[str]]:
    """The engine's ``--mask`` arguments for the mask file ``path``, and the files they read.
    A movie, a folder, or an image with no next number is that file (an image: a still mask
    for every frame); an image of a numbered run is read as a movie clip opened from it reads
    it, from its number to the first missing one (``--mask-start-number``)."""
    is_image = os.path.splitext(path)[1].lower() in bpy.path.extensions_image
    images = NumberedImages.of(path) if is_image else None
    if images is None or not os.path.isfile(images.file(images.start + 1)):
        return ["--mask", path], [path]
    files = [path]
    while os.path.isfile(following := images.file(images.start + len(files))):
        files.append(following)
    return ["--mask", images.pattern(), "--mask-start-number", str(images.start)], files


def ocio_config() -> str:
    """The OpenColorIO config Blender reads colour spaces from: ``$OCIO``, else its own ("":
    none found, and the engine's own error says what to do where one is needed)."""
    if os.environ.get("OCIO"):
        return os.environ["OCIO"]
    folder = bpy.utils.system_resource("DATAFILES", path="colormanagement")
    return os.path.join(folder, "config.ocio") if folder else ""


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def from_clip(clip, scene=None) -> Source:
    if clip is None:
        raise SourceError("no movie clip: open one in the Clip Editor")
    if clip.source not in ("MOVIE", "SEQUENCE"):
        raise SourceError(f"{clip.name}: only movie files and image sequences can be sketched")
    sequence = clip.source == "SEQUENCE"
    path = _check_file(clip.filepath, clip.name, "image" if sequence else "movie file", clip)
    count = clip.frame_duration
    if count <= 0:
        raise SourceError(f"{clip.name}: Blender cannot read any frame of {path} (is it a video?)")
    # Blender shows movie frame (clip frame - 1 + frame_offset) at scene frame
    # frame_start + clip frame - 1; an image sequence's frame 0 is the chosen image.
    first = max(0, clip.frame_offset)
    if first >= count:
        raise SourceError(f"{clip.name}: its frame offset {clip.frame_offset} skips every frame")
    scene = scene or bpy.context.scene
    return Source(f"clip:{clip.name}", clip.name, path, scene.name, clip.frame_start - clip.frame_offset,
                  (first, count), clip.name, images=NumberedImages.of(path) if sequence else None,
                  fps=scene_fps(scene) if sequence else 0.0, colorspace=clip.colorspace_settings.name)


def _strip_images(strip) -> tuple[str, NumberedImages | None]:
    """An image strip's first image and its numbering; its images must be one numbered run."""
    folder = bpy.path.abspath(strip.directory, library=strip.id_data.library)
    names = [element.filename for element in strip.elements]
    path = _check_file(os.path.join(folder, names[0]), strip.name, "image")
    images = NumberedImages.of(path)
    if len(names) > 1 and (images is None or any(
            os.path.basename(images.file(images.start + i)) != name for i, name in enumerate(names))):
        raise SourceError(f"{strip.name}: its images are not one numbered sequence "
                          "(shot_0001.png, shot_0002.png, ...); sketch a movie of them instead")
    for name in names[1:]:
        _check_file(os.path.join(folder, name), strip.name, "image")
    return path, images


def _clip_of_strip(strip, scene) -> tuple[Source, int]:
    """A clip strip's clip, and where the strip starts in it: it plays clip frame (strip
    frame + the clip's Frame Offset); the clip's Start Frame does not count there."""
    if strip.clip is None:
        raise SourceError(f"{strip.name}: the clip strip has no movie clip")
    if strip.stabilize2d or strip.undistort:
        raise SourceError(f"{strip.name}: turn off 2D Stabilized and Undistorted to sketch it "
                          "(the engine sketches the footage as it was filmed)")
    return from_clip(strip.clip, scene), strip.clip.frame_offset


def _f32(value: float) -> float:
    """``value`` as a 32-bit float, as Blender's C code holds it."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _own_rate(strip, scene) -> tuple[float, int]:
    """Movie frames a movie strip plays per scene frame, and its movie's frame count. Blender's
    Add > Movie (with Adjust Playback Rate, its default) makes a strip play its movie at the
    movie's own frame rate, skipping or repeating frames in a scene of another rate; strips
    made otherwise play it frame for frame (1.0, 0). Only the length tells them apart, so the
    movie is opened as a clip to count its frames: not from a draw()."""
    scene_rate = _f32(_f32(scene.render.fps) / _f32(scene.render.fps_base))
    rate = _f32(_f32(strip.fps) / scene_rate) if strip.type == "MOVIE" and strip.fps else 1.0
    if rate == 1.0:
        return 1.0, 0
    known = {clip.as_pointer() for clip in bpy.data.movieclips}
    try:
        clip = bpy.data.movieclips.load(_check_file(strip.filepath, strip.name, owner=strip.id_data),
                                        check_existing=True)
    except RuntimeError:                      # unreadable: the engine says so
        return 1.0, 0
    count = clip.frame_duration
    if clip.as_pointer() not in known:
        bpy.data.movieclips.remove(clip)
    content = count - strip.animation_offset_start - strip.animation_offset_end
    if count <= 0 or content <= 0 or strip.frame_duration == content:
        return 1.0, 0
    return rate, count


def _pictures_at_rate(strip, rate: float, content: int, held: int) -> list[int]:
    """The source index a movie strip playing ``rate`` movie frames a scene frame shows at each
    scene frame of its content, as Blender's Sequencer picks it: the scene frames from the
    content's start (reversed: to its end) times the rate, in 32-bit floats, within the
    content's ``content`` frames (the first is ``held``), rounded half up."""
    frames = int(strip.frame_duration)
    reverse = getattr(strip, "use_reverse_frames", False)
    pictures = []
    for k in range(frames):
        index = min(_f32((frames - 1 - k if reverse else k) * rate), float(content - 1))
        pictures.append(held + math.floor(_f32(index + 0.5)))
    return pictures


def from_strip(strip, scene, count_frames: bool = False) -> Source:
    """What ``strip`` shows. ``count_frames``: also find whether a movie strip plays its movie at
    the movie's own frame rate (``_own_rate``), which opens the movie: the Sketch operator asks
    for it, a panel's draw() cannot (there the scene frames are right, the indices may not be)."""
    if strip is None or getattr(strip, "type", "") not in ("MOVIE", "IMAGE", "MOVIECLIP"):
        raise SourceError("no movie strip: select a movie, image or clip strip in the Sequencer")
    duration = int(strip.frame_duration)             # the content's scene frames: the footage less the hold offsets
    offsets = int(getattr(strip, "animation_offset_start", 0)), int(getattr(strip, "animation_offset_end", 0))
    shift, count = 0, duration + sum(offsets)        # count: the footage's frames
    if strip.type == "IMAGE":
        (path, images), fps = _strip_images(strip), scene_fps(scene)
    elif strip.type == "MOVIECLIP":
        clip, shift = _clip_of_strip(strip, scene)
        path, images, fps, count = clip.path, clip.images, clip.fps, clip.default_range[1]
    else:
        path, images, fps = _check_file(strip.filepath, strip.name, owner=strip.id_data), None, 0.0
    # the Sequencer reads a movie or image strip in its colour space, and a clip strip's movie
    # as the file's default, whatever the clip's (measured on 4.5 and 5.0)
    colorspace = "" if strip.type == "MOVIECLIP" else strip.colorspace_settings.name
    if len(getattr(strip, "retiming_keys", ())):
        raise SourceError(f"{strip.name}: retimed strips cannot be sketched yet "
                          "(Strip > Retiming > Reset Retiming, or sketch a copy)")
    if getattr(strip, "strobe", 1.0) > 1.0:
        raise SourceError(f"{strip.name}: set its Strobe to 1 to sketch it")
    rate, counted = _own_rate(strip, scene) if count_frames else (1.0, 0)
    key = f"strip:{scene.name}:{strip.name}"
    content = int(strip.frame_start), int(strip.frame_start) + duration - 1      # scene frames
    of_strip = dict(held_before=(int(strip.frame_final_start), content[0]) if strip.frame_offset_start < 0 else None,
                    held_after=(int(strip.frame_final_end) - 1, content[1]) if strip.frame_offset_end < 0 else None,
                    span=(int(strip.frame_final_start), int(strip.frame_final_end) - 1), strip_name=strip.name,
                    colorspace=colorspace)
    if rate != 1.0:
        # each scene frame shows the picture Blender picks at this rate; the handles hide some
        pictures = _pictures_at_rate(strip, rate, counted - sum(offsets), offsets[0])
        first = max(int(strip.frame_final_start), content[0])
        pictures = pictures[first - content[0]:int(strip.frame_final_end) - content[0]]
        if not pictures:
            raise SourceError(f"{strip.name}: the strip shows no frame")
        return Source(key, strip.name, path, scene.name, first, (min(pictures), max(pictures) + 1),
                      reversed=getattr(strip, "use_reverse_frames", False), images=images, fps=fps,
                      playback=tuple(pictures), **of_strip)
    # The strip's content (source frames animation_offset_start ... after the hold offsets)
    # starts at frame_start; the trims (frame_offset_start/end) hide its ends. A handle
    # dragged past the content (a negative trim) holds its first or last frame there.
    held = offsets[0] + shift
    start_trim, end_trim = max(0, int(strip.frame_offset_start)), max(0, int(strip.frame_offset_end))
    shown = (max(0, held + start_trim), min(count, held + duration - end_trim))
    if shown[1] <= shown[0]:
        raise SourceError(f"{strip.name}: the strip shows no frame")
    if getattr(strip, "use_reverse_frames", False):
        # the timeline shows the content backwards: the start trim hides its last frames
        shown = (max(0, held + end_trim), min(count, held + duration - start_trim))
        return Source(key, strip.name, path, scene.name, content[1] + held, shown, reversed=True, images=images,
                      fps=fps, **of_strip)
    return Source(key, strip.name, path, scene.name, content[0] - held, shown, images=images, fps=fps, **of_strip)


def sequencer_scene(context) -> bpy.types.Scene:
    """Blender 5.0 edits strips of ``context.sequencer_scene``; before, of ``context.scene``."""
    return getattr(context, "sequencer_scene", None) or context.scene


def settings_scene(context) -> bpy.types.Scene:
    """The scene whose DynaSketch settings the editor shows and whose timeline the result
    lands on: the sequencer's scene in the Sequencer, else the window's scene."""
    space = getattr(context, "space_data", None)
    if space is not None and space.type == "SEQUENCE_EDITOR":
        return sequencer_scene(context)
    return context.scene


def all_strips(scene):
    editor = scene.sequence_editor if scene else None
    if editor is None:
        return []
    return getattr(editor, "strips_all", None) or getattr(editor, "sequences_all", [])


def active_strip(context):
    scene = sequencer_scene(context)
    editor = scene.sequence_editor if scene else None
    return editor.active_strip if editor else None


def from_context(context, count_frames: bool = False) -> Source:
    space = getattr(context, "space_data", None)
    if space is not None and space.type == "CLIP_EDITOR":
        return from_clip(space.clip, context.scene)
    if space is not None and space.type == "SEQUENCE_EDITOR":
        return from_strip(active_strip(context), sequencer_scene(context), count_frames)
    clip = getattr(context, "edit_movieclip", None)
    if clip is not None:
        return from_clip(clip, context.scene)
    strip = active_strip(context)
    if strip is not None:
        return from_strip(strip, sequencer_scene(context), count_frames)
    raise SourceError("nothing to sketch: open a movie clip in the Clip Editor or select a movie strip")


def describe(context) -> str:
    """One line for the panel: what Sketch would sketch, or why nothing."""
    try:
        src = from_context(context)
    except SourceError as exc:
        return str(exc)
    first, last = src.scene_range()
    return f"{src.label}: frames {first}-{last}"
