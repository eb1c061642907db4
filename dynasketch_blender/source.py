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
    frame_count: int          # source frames in the file
    offset: int               # scene frame = offset + source index
    default_range: tuple      # source indices (start, end exclusive) the user sees by default
    movie_clip_name: str = ""

    def scene_frame_of(self, index: int) -> int:
        return self.offset + index

    def source_range(self, scene_start: int, scene_end: int) -> tuple:
        """Scene frames (inclusive) -> source indices (start, end exclusive), clamped."""
        start = max(0, scene_start - self.offset)
        end = min(self.frame_count, scene_end - self.offset + 1)
        if end <= start:
            raise SourceError(f"frames {scene_start}-{scene_end} lie outside {self.label} "
                              f"(scene frames {self.offset}-{self.offset + self.frame_count - 1})")
        return start, end


def _check_file(path: str, label: str) -> str:
    path = os.path.abspath(bpy.path.abspath(path))
    if not os.path.isfile(path):
        raise SourceError(f"{label}: the movie file is missing ({path})")
    return path


def from_clip(clip: bpy.types.MovieClip) -> Source:
    if clip is None:
        raise SourceError("no movie clip: open one in the Clip Editor")
    if clip.source != "MOVIE":
        raise SourceError(f"{clip.name}: only movie files can be sketched (not image sequences in Blender)")
    path = _check_file(clip.filepath, clip.name)
    count = clip.frame_duration
    if count <= 0:
        raise SourceError(f"{clip.name}: Blender cannot read any frame of {path}")
    return Source(f"clip:{clip.name}", clip.name, path, count, clip.frame_start - clip.frame_offset,
                  (0, count), clip.name)


def from_strip(strip) -> Source:
    if strip is None or getattr(strip, "type", "") != "MOVIE":
        raise SourceError("no movie strip: select a movie strip in the Sequencer")
    path = _check_file(strip.filepath, strip.name)
    start = int(strip.frame_offset_start)
    count = int(strip.frame_duration) if hasattr(strip, "frame_duration") else \
        int(strip.frame_final_duration + strip.frame_offset_start + strip.frame_offset_end)
    return Source(f"strip:{strip.name}", strip.name, path, count, int(strip.frame_start),
                  (start, start + int(strip.frame_final_duration)))


def sequencer_scene(context) -> bpy.types.Scene:
    """Blender 5.0 edits strips of ``context.sequencer_scene``; before, of ``context.scene``."""
    return getattr(context, "sequencer_scene", None) or context.scene


def active_strip(context):
    scene = sequencer_scene(context)
    editor = scene.sequence_editor if scene else None
    return editor.active_strip if editor else None


def from_context(context) -> Source:
    space = context.space_data
    if space is not None and space.type == "CLIP_EDITOR":
        return from_clip(space.clip)
    if space is not None and space.type == "SEQUENCE_EDITOR":
        return from_strip(active_strip(context))
    clip = context.edit_movieclip if hasattr(context, "edit_movieclip") else None
    if clip is not None:
        return from_clip(clip)
    strip = active_strip(context)
    if strip is not None:
        return from_strip(strip)
    raise SourceError("nothing to sketch: open a movie clip in the Clip Editor or select a movie strip")
