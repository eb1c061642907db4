"""Operators: Sketch (modal, with a progress bar and Esc), Cancel, Import Sketch, Check Engine."""
from __future__ import annotations

import os
import time

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import source as sources
from .engine_process import EngineNotFound, find_engine, run_doctor
from .preferences import preferences
from .properties import BACKGROUNDS
from .sketch_file import SketchFileError, load_sketch
from .sketch_job import CANCELLED, DONE, RUNNING, SketchJob, build_result

_cancel_requested: set[str] = set()     # scenes whose running sketch should stop


def job_options(settings, source) -> dict:
    if settings.use_source_range:
        first, last = source.default_range
    else:
        first, last = source.source_range(settings.frame_start, settings.frame_end)
    mask = settings.mask_mode
    if mask == "file":
        if not settings.mask_path:
            raise sources.SourceError("choose a mask file, or set Mask to Auto or None")
        mask = os.path.abspath(bpy.path.abspath(settings.mask_path))
    return {"strokes": settings.strokes, "width": settings.width, "preset": settings.preset,
            "frames": (first, last, settings.frame_step), "mask": mask, "seeds": settings.seeds,
            "device": settings.device}


def engine_prefix(context) -> list[str]:
    prefs = preferences(context)
    return find_engine(prefs.engine_python if prefs else "")


class DYNASKETCH_OT_sketch(bpy.types.Operator):
    """Sketch the movie clip or strip into animated Grease Pencil strokes"""

    bl_idname = "dynasketch.sketch"
    bl_label = "Sketch"
    bl_options = {"REGISTER", "UNDO"}

    clip: StringProperty(name="Movie Clip", default="", options={"SKIP_SAVE"},
                         description="Name of the movie clip to sketch (default: the active one)")
    strip: StringProperty(name="Movie Strip", default="", options={"SKIP_SAVE"},
                          description="Name of the movie strip to sketch (default: the active one)")

    _job = None
    _timer = None

    # -- the pieces, shared by the interactive and the blocking paths ---------------------
    def _source(self, context):
        if self.clip:
            return sources.from_clip(bpy.data.movieclips.get(self.clip))
        if self.strip:
            scene = sources.sequencer_scene(context)
            editor = scene.sequence_editor
            strips = getattr(editor, "strips_all", None) or getattr(editor, "sequences_all", [])
            return sources.from_strip(strips.get(self.strip) if editor else None)
        return sources.from_context(context)

    def _start(self, context) -> bool:
        settings = context.scene.dynasketch
        try:
            self._src = self._source(context)
            options = job_options(settings, self._src)
            prefs = preferences(context)
            self._job = SketchJob(engine_prefix(context), self._src, options,
                                  bpy.path.abspath(prefs.model_dir) if prefs and prefs.model_dir else "")
        except (sources.SourceError, EngineNotFound) as exc:
            return self._fail(context, str(exc))
        self._job.start()
        _cancel_requested.discard(context.scene.name)
        settings.running, settings.progress, settings.status = True, 0.0, self._job.message
        settings.log_path = self._job.log
        return True

    def _fail(self, context, message: str) -> bool:
        settings = context.scene.dynasketch
        settings.running, settings.status = False, message
        self.report({"ERROR"}, message)
        return False

    def _update(self, context) -> str:
        state = self._job.step()
        settings = context.scene.dynasketch
        settings.progress, settings.status, settings.log_path = self._job.progress, self._job.message, self._job.log
        return state

    def _finish(self, context, state: str) -> set:
        settings = context.scene.dynasketch
        settings.running = False
        if state == CANCELLED:
            settings.status = "Cancelled; the scene is unchanged (Sketch again resumes)"
            self.report({"WARNING"}, settings.status)
            return {"CANCELLED"}
        if state != DONE:
            self._fail(context, self._job.error)
            return {"CANCELLED"}
        try:
            sketch = load_sketch(self._job.sketch_path)
            clip = bpy.data.movieclips.get(self._src.movie_clip_name) if self._src.movie_clip_name else None
            obj = build_result(context.scene, sketch, self._src.key, settings.target_name or self._src.label,
                               self._src.scene_frame_of, settings.background, settings.match_scene,
                               clip, self._src.path)
        except Exception as exc:  # one line for the user; nothing half-built is left
            self._fail(context, f"DynaSketch could not build the result: {exc} (sketch: {self._job.sketch_path})")
            return {"CANCELLED"}
        settings.status = f"Sketched {len(sketch.frames)} frames into {obj.name}"
        self.report({"INFO"}, settings.status)
        return {"FINISHED"}

    # -- blocking: scripts and background mode ------------------------------------------
    def execute(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        while self._update(context) == RUNNING:
            if context.scene.name in _cancel_requested:
                self._job.cancel()
            time.sleep(0.05)
        return self._finish(context, self._job.state)

    # -- interactive: a modal operator fed by a timer -----------------------------------
    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        if context.scene.dynasketch.running:
            self.report({"WARNING"}, "a sketch is already running in this scene")
            return {"CANCELLED"}
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" or context.scene.name in _cancel_requested:
            self._job.cancel()
            return self._end(context, self._finish(context, CANCELLED))
        if event.type == "TIMER":
            state = self._update(context)
            for area in context.screen.areas if context.screen else []:
                if area.type in {"CLIP_EDITOR", "SEQUENCE_EDITOR"}:
                    area.tag_redraw()
            if state != RUNNING:
                return self._end(context, self._finish(context, state))
        return {"PASS_THROUGH"}

    def _end(self, context, result: set) -> set:
        context.window_manager.event_timer_remove(self._timer)
        _cancel_requested.discard(context.scene.name)
        return result


class DYNASKETCH_OT_cancel(bpy.types.Operator):
    """Stop the running sketch; the scene stays as it was"""

    bl_idname = "dynasketch.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        _cancel_requested.add(context.scene.name)
        return {"FINISHED"}


class DYNASKETCH_OT_import_sketch(bpy.types.Operator, ImportHelper):
    """Build animated Grease Pencil strokes from a DynaSketch sketch.json"""

    bl_idname = "dynasketch.import_sketch"
    bl_label = "Import DynaSketch"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})
    background: EnumProperty(name="Background", items=BACKGROUNDS, default="paper")
    match_scene: BoolProperty(name="Match Scene to Clip", default=True)

    def execute(self, context):
        try:
            sketch = load_sketch(self.filepath)
        except SketchFileError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        src = _matching_clip_source(sketch.source_path)
        label = src.label if src else os.path.splitext(os.path.basename(sketch.source_path or self.filepath))[0]
        key = src.key if src else f"file:{sketch.source_path or self.filepath}"
        frame_of = src.scene_frame_of if src else (lambda index: 1 + index)
        clip = bpy.data.movieclips.get(src.movie_clip_name) if src else None
        movie = sketch.source_path if os.path.isfile(sketch.source_path) else ""
        try:
            obj = build_result(context.scene, sketch, key, label, frame_of, self.background,
                               self.match_scene, clip, movie)
        except Exception as exc:  # one line for the user, nothing half-built is left
            self.report({"ERROR"}, f"DynaSketch could not build the sketch: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Imported {len(sketch.frames)} frames into {obj.name}")
        return {"FINISHED"}


def _matching_clip_source(path: str):
    """The loaded movie clip of the same file, so frames land where the clip plays them."""
    for clip in bpy.data.movieclips:
        try:
            if path and os.path.samefile(bpy.path.abspath(clip.filepath), path):
                return sources.from_clip(clip)
        except (OSError, sources.SourceError):
            continue
    return None


class DYNASKETCH_OT_check_engine(bpy.types.Operator):
    """Run `dynasketch doctor` and show what the engine can use on this machine"""

    bl_idname = "dynasketch.check_engine"
    bl_label = "Check Engine"

    def execute(self, context):
        prefs = preferences(context)
        try:
            prefix = engine_prefix(context)
        except EngineNotFound as exc:
            report = str(exc)
            self.report({"ERROR"}, report)
        else:
            report = f"engine: {' '.join(prefix)}\n" + run_doctor(prefix)
            self.report({"INFO"}, "engine checked: see the add-on preferences")
        if prefs:
            prefs.doctor_report = report
        return {"FINISHED"}


def menu_import(self, context):
    self.layout.operator(DYNASKETCH_OT_import_sketch.bl_idname, text="DynaSketch Sketch (.json)")


CLASSES = (DYNASKETCH_OT_sketch, DYNASKETCH_OT_cancel, DYNASKETCH_OT_import_sketch,
           DYNASKETCH_OT_check_engine)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister() -> None:
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
