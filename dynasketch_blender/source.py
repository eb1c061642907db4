"""What is being sketched: the active movie clip (Clip Editor) or movie strip (Sequencer),
with the mapping from its source frame indices to scene frames."""
from __future__ import annotations

import os
from dataclasses import dataclass

import bpy


class SourceError(Exception):
    pass


@dataclass
class Source:
    key: str                  # identifies the clip or strip; a re-run replaces its old result
    label: str
    path: str                 # absolute path of the movie file
    scene_name: str           # the scene whose timeline the frames are placed on
    offset: int               # scene frame = offset + source index (reversed: offset - index)
    default_range: tuple      # source indices (start, end exclusive) the clip or strip shows
    movie_clip_name: str = ""
    reversed: bool = False

    def scene_frame_of(self, index: int) -> int:
        return self.offset - index if self.reversed else self.offset + index

    def source_range(self, scene_start: int, scene_end: int) -> tuple:
        """Scene frames (inclusive) -> source indices (start, end exclusive), within what
        the clip or strip shows."""
        a, b = sorted((self.scene_frame_of(self.default_range[0]), self.scene_frame_of(self.default_range[1] - 1)))
        lo, hi = max(a, scene_start), min(b, scene_end)
        if hi < lo:
            raise SourceError(f"frames {scene_start}-{scene_end} lie outside {self.label} "
                              f"(it plays at scene frames {a}-{b})")
        first, last = sorted((self.index_at(lo), self.index_at(hi)))
        return first, last + 1

    def index_at(self, scene_frame: int) -> int:
        return self.offset - scene_frame if self.reversed else scene_frame - self.offset

    def scene_range(self) -> tuple:
        """The scene frames (first, last) where the default range plays."""
        ends = (self.scene_frame_of(self.default_range[0]), self.scene_frame_of(self.default_range[1] - 1))
        return min(ends), max(ends)


def _check_file(path: str, label: str) -> str:
    path = os.path.abspath(bpy.path.abspath(path))
    if not os.path.isfile(path):
        raise SourceError(f"{label}: the movie file is missing ({path})")
    return path


def from_clip(clip, scene=None) -> Source:
    if clip is None:
        raise SourceError("no movie clip: open one in the Clip Editor")
    if clip.source != "MOVIE":
        raise SourceError(f"{clip.name}: only movie files can be sketched, not image sequences")
    path = _check_file(clip.filepath, clip.name)
    count = clip.frame_duration
    if count <= 0:
        raise SourceError(f"{clip.name}: Blender cannot read any frame of {path} (is it a video?)")
    # Blender shows movie frame (clip frame - 1 + frame_offset) at scene frame
    # frame_start + clip frame - 1.
    first = max(0, clip.frame_offset)
    if first >= count:
        raise SourceError(f"{clip.name}: its frame offset {clip.frame_offset} skips every frame")
    scene = scene or bpy.context.scene
    return Source(f"clip:{clip.name}", clip.name, path, scene.name, clip.frame_start - clip.frame_offset,
                  (first, count), clip.name)


def from_strip(strip, scene) -> Source:
    if strip is None or getattr(strip, "type", "") != "MOVIE":
        raise SourceError("no movie strip: select a movie strip in the Sequencer")
    path = _check_file(strip.filepath, strip.name)
    if len(getattr(strip, "retiming_keys", ())):
        raise SourceError(f"{strip.name}: retimed strips cannot be sketched yet "
                          "(Strip > Retiming > Reset Retiming, or sketch a copy)")
    if getattr(strip, "strobe", 1.0) > 1.0:
        raise SourceError(f"{strip.name}: set its Strobe to 1 to sketch it")
    # The strip's content (source frames animation_offset_start ... after the hold offsets)
    # starts at frame_start; the trims (frame_offset_start/end) hide its ends.
    held = int(getattr(strip, "animation_offset_start", 0))
    duration = int(strip.frame_duration)
    shown = (held + int(strip.frame_offset_start), held + duration - int(strip.frame_offset_end))
    if shown[1] <= shown[0]:
        raise SourceError(f"{strip.name}: the strip shows no frame")
    if getattr(strip, "use_reverse_frames", False):
        # the timeline shows the content backwards: the start trim hides its last frames
        shown = (held + int(strip.frame_offset_end), held + duration - int(strip.frame_offset_start))
        offset = int(strip.frame_start) + held + duration - 1
        return Source(f"strip:{scene.name}:{strip.name}", strip.name, path, scene.name, offset, shown,
                      reversed=True)
    return Source(f"strip:{scene.name}:{strip.name}", strip.name, path, scene.name,
                  int(strip.frame_start) - held, shown)


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


def from_context(context) -> Source:
    space = getattr(context, "space_data", None)
    if space is not None and space.type == "CLIP_EDITOR":
        return from_clip(space.clip, context.scene)
    if space is not None and space.type == "SEQUENCE_EDITOR":
        return from_strip(active_strip(context), sequencer_scene(context))
    clip = getattr(context, "edit_movieclip", None)
    if clip is not None:
        return from_clip(clip, context.scene)
    strip = active_strip(context)
    if strip is not None:
        return from_strip(strip, sequencer_scene(context))
    raise SourceError("nothing to sketch: open a movie clip in the Clip Editor or select a movie strip")


def describe(context) -> str:
    """One line for the panel: what Sketch would sketch, or why nothing."""
    try:
        src = from_context(context)
    except SourceError as exc:
        return str(exc)
    first, last = src.scene_range()
    return f"{src.label}: frames {first}-{last}"
