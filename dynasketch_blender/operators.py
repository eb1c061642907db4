"""Operators: Sketch (modal, with a progress bar and Esc), Cancel, Import Sketch, Apply Style,
Check Engine, Download Models (modal too) and Cancel Download, Reset Settings, Remove Job Folders."""
from __future__ import annotations

import os
import time

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatVectorProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import job_folders, styles, subject
from . import source as sources
from .engine_install import installed_python
from .engine_process import EngineNotFound, find_engine, run_doctor
from .model_download import AUTO_MODELS, ModelDownload
from .preferences import preferences
from .properties import BACKGROUNDS, apply_defaults
from .sketch_file import SketchFileError, load_sketch
from .sketch_job import CANCELLED, DONE, RUNNING, SketchJob, build_result

_cancel_requested: set[str] = set()     # scenes whose running sketch should stop


def job_options(settings, source, default_device: str = "auto", work_dir: str = "") -> dict:
    """The engine's settings for a sketch of ``source``. The Subject: Auto and None as they
    are, a Mask File's frames, Box's ``--subject`` boxes, or a Blender Mask rendered here
    (into ``work_dir``, for the job folder: ``mask_raster``; it takes a while)."""
    if settings.use_source_range:
        first, last = source.default_range
    else:
        first, last = source.source_range(settings.frame_start, settings.frame_end)
    mode = settings.mask_mode
    mask, mask_files, raster = ["--mask", mode], [], None
    if mode == "file":
        if not settings.mask_path:
            raise sources.SourceError("choose a mask file, or set Subject to Auto or None")
        path = os.path.abspath(bpy.path.abspath(settings.mask_path))
        if not os.path.exists(path):
            raise sources.SourceError(f"mask file not found: {path}")
        mask, mask_files = sources.mask_input(path)
    elif mode == "box":
        mask = subject.box_arguments(settings, source, first, last)
    elif mode == "blender_mask":
        raster = subject.rasterise_mask(settings.subject_mask, source, first, last, job_folders.work_root(work_dir))
        mask = raster.key()
    return {"strokes": settings.strokes, "width": settings.width, "preset": settings.preset,
            "frames": (first, last, settings.frame_step), "mask": mask, "mask_files": mask_files,
            "mask_raster": raster, "seeds": settings.seeds,
            "device": default_device if settings.device == "auto" else settings.device}


def check_local(scene) -> None:
    """A result goes into ``scene``: refuse a scene linked from another .blend file, where what
    is added is not saved."""
    if scene.library is not None:
        raise sources.SourceError(
            f"scene {scene.name} is linked from {os.path.normpath(bpy.path.abspath(scene.library.filepath))}: "
            "work in that file, or make the scene local (Outliner: ID Data > Make Local)")


def frames_text(count: int) -> str:
    return f"{count} frame" if count == 1 else f"{count} frames"


def preference_path(context, name: str) -> str:
    """A path preference as an absolute path, or "" when it is empty (or the add-on has none)."""
    prefs = preferences(context)
    value = getattr(prefs, name) if prefs else ""
    return bpy.path.abspath(value) if value else ""


def engine_command(context):
    """The engine to run: see ``engine_process.find_engine`` (Install Engine's comes third)."""
    from .install_operators import install_home

    return find_engine(preference_path(context, "engine_python"), installed_python(install_home(context)))


def model_folder(context) -> str:
    """The Model Folder preference as an absolute path, or "" for the engine's default."""
    return preference_path(context, "model_dir")


def work_folder(context) -> str:
    """Where job folders go: the Work Folder preference as an absolute path, else the
    system's temp folder."""
    return job_folders.work_root(preference_path(context, "work_dir"))


def redraw_editors(context) -> None:
    wm = context.window_manager
    for window in wm.windows if wm else []:
        for area in window.screen.areas:
            if area.type in {"CLIP_EDITOR", "SEQUENCE_EDITOR", "PREFERENCES"}:
                area.tag_redraw()


class EngineJobOperator:
    """Runs an ``engine_process.EngineJob``: blocking in ``execute`` (scripts, background mode,
    where modal operators do not run), else modal on a timer, Esc or ``_stop_requested()``
    stopping it. Subclasses give ``_start`` (makes ``self._job``; False on failure),
    ``_update`` (one step, shown to the user) and ``_finish`` (after the job ends)."""

    _job = None
    _timer = None
    _warned = ""                # the engine warning already reported

    def _stop_requested(self) -> bool:
        return False

    def _ended(self) -> None:
        pass

    def execute(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        while self._update(context) == RUNNING:
            if self._stop_requested():
                self._job.cancel()
            time.sleep(0.05)
        result = self._finish(context, self._job.state)
        self._ended()
        return result

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" or self._stop_requested():
            self._job.cancel()
            return self._end(context, self._finish(context, CANCELLED))
        if event.type == "TIMER":
            state = self._update(context)
            redraw_editors(context)
            if state != RUNNING:
                return self._end(context, self._finish(context, state))
        return {"PASS_THROUGH"}

    def cancel(self, context):
        """Blender ends a modal operator without a last event when another file is opened or
        its window closes: the engine stops too, keeping its finished frames (or partial
        download) for the next run to resume, rather than run on for nobody."""
        if self._job is not None:
            self._job.cancel()
        self._ended()

    def _end(self, context, result: set) -> set:
        context.window_manager.event_timer_remove(self._timer)
        self._ended()
        redraw_editors(context)
        return result


class DYNASKETCH_OT_sketch(EngineJobOperator, bpy.types.Operator):
    """Sketch the movie clip or strip into animated Grease Pencil strokes (Esc stops)"""

    bl_idname = "dynasketch.sketch"
    bl_label = "Sketch"
    bl_options = {"UNDO"}          # not REGISTER: a repeat would call the blocking execute

    clip: StringProperty(name="Movie Clip", default="", options={"SKIP_SAVE"},
                         description="Name of the movie clip to sketch (default: the active one)")
    strip: StringProperty(name="Movie Strip", default="", options={"SKIP_SAVE"},
                          description="Name of the movie strip to sketch (default: the active one)")

    def _source(self, context):
        if self.clip:
            clip = bpy.data.movieclips.get(self.clip)
            if clip is None:
                raise sources.SourceError(f"no movie clip named {self.clip!r}")
            return sources.from_clip(clip, context.scene)
        if self.strip:
            scene = sources.sequencer_scene(context)
            strip = next((s for s in sources.all_strips(scene) if s.name == self.strip), None)
            if strip is None:
                raise sources.SourceError(f"no strip named {self.strip!r} in scene {scene.name}")
            return sources.from_strip(strip, scene, count_frames=True)
        return sources.from_context(context, count_frames=True)

    def _settings(self):
        return bpy.data.scenes[self._scene_name].dynasketch

    def _start(self, context) -> bool:
        self._scene_name = sources.settings_scene(context).name
        settings = self._settings()
        if settings.running:
            return self._fail("a sketch is already running in this scene (Cancel stops it)")
        settings.warning = ""                        # the last run's; this one's come from its engine
        try:
            self._src = self._source(context)
            self._scene_name = self._src.scene_name
            check_local(bpy.data.scenes[self._scene_name])
            settings = self._settings()
            prefs = preferences(context)
            engine = engine_command(context)
            options = job_options(settings, self._src, prefs.default_device if prefs else "auto",
                                  work_folder(context))
            self._job = SketchJob(engine, self._src, options, model_folder(context), work_folder(context))
        except (sources.SourceError, EngineNotFound) as exc:
            return self._fail(f"DynaSketch: {exc}")
        self._target = settings.target_object
        _cancel_requested.discard(self._scene_name)
        settings.warning, self._warned = "", ""
        if self._job.start() != RUNNING:
            return self._fail(self._job.error)
        settings.running, settings.failed, settings.progress = True, False, 0.0
        settings.status, settings.log_path = self._job.message, self._job.log
        return True

    def _fail(self, message: str) -> bool:
        settings = self._settings()
        settings.running, settings.failed, settings.status = False, True, message
        if self._job is not None:
            settings.log_path = self._job.log
        self.report({"ERROR"}, message)
        return False

    def _update(self, context) -> str:
        state = self._job.step()
        settings = self._settings()
        settings.progress, settings.status, settings.log_path = self._job.progress, self._job.message, self._job.log
        self._show_warning(settings)
        return state

    def _show_warning(self, settings) -> None:
        """The engine's latest warning, in the panel and (once) in the Info report."""
        settings.warning = self._job.warning
        if self._job.warning and self._job.warning != self._warned:
            self._warned = self._job.warning
            self.report({"WARNING"}, f"DynaSketch: {self._job.warning}")

    def _finish(self, context, state: str) -> set:
        settings = self._settings()
        settings.running = False
        self._show_warning(settings)
        if state == CANCELLED:
            settings.failed = False
            settings.status = "Cancelled: the scene is unchanged (Sketch again resumes)"
            self.report({"WARNING"}, settings.status)
            return {"CANCELLED"}
        sketch = self._job.load() if state == DONE else None
        if sketch is None:
            self._fail(self._job.error)
            return {"CANCELLED"}
        scene = bpy.data.scenes[self._scene_name]
        try:
            obj = build_result(scene, sketch, self._src, settings.background, settings.match_scene, self._target)
        except Exception as exc:  # one line for the user; nothing half-built is left
            self._fail(f"DynaSketch could not build the result: {exc} (sketch: {self._job.sketch_path})")
            return {"CANCELLED"}
        settings.failed = False
        note = style_result(obj, settings, scene, settings.background)
        where = f" (scene {obj.users_scene[0].name}, shown in the edit by a scene strip)" if (
            self._src.strip_name and obj.users_scene) else ""
        settings.status = f"Sketched {frames_text(len(sketch.frames))} into {obj.name}{where}"
        self.report({"INFO"}, settings.status)
        if note:
            self.report({"WARNING"}, f"DynaSketch: {note}")
        # Jobs of footage saved again since (this one's earlier versions, say) can never resume.
        job_folders.remove_stale(os.path.dirname(self._job.out))
        return {"FINISHED"}

    def _stop_requested(self) -> bool:
        return self._scene_name in _cancel_requested

    def _ended(self) -> None:
        _cancel_requested.discard(self._scene_name)


class DYNASKETCH_OT_cancel(bpy.types.Operator):
    """Stop the running sketch; the scene stays as it was"""

    bl_idname = "dynasketch.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        _cancel_requested.add(sources.settings_scene(context).name)
        return {"FINISHED"}


class DYNASKETCH_OT_import_sketch(bpy.types.Operator, ImportHelper):
    """Build animated Grease Pencil strokes from a DynaSketch sketch.json"""

    bl_idname = "dynasketch.import_sketch"
    bl_label = "Import DynaSketch"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})
    background: EnumProperty(name="Background", items=BACKGROUNDS, default="paper",
                             description="What the render shows behind the strokes")
    match_scene: BoolProperty(name="Match Scene to Clip", default=True,
                              description="Set the scene's frame rate, resolution and range from the sketch")
    style: EnumProperty(name="Style", items=styles.STYLES, default=styles.DEFAULT_STYLE,
                        description="The medium the strokes are drawn in")
    line_colour: EnumProperty(name="Line Colour", items=styles.COLOURS, default="medium",
                              description="The colour of the lines")
    line_custom: FloatVectorProperty(name="Colour", subtype="COLOR", size=3, min=0.0, max=1.0,
                                     default=(0.8, 0.1, 0.1), description="The lines' colour")
    boil: BoolProperty(name="Boil", default=False, description="Lines that wobble on 2s (a Noise modifier)")

    def execute(self, context):
        scene = context.scene
        try:
            check_local(scene)
            sketch = load_sketch(self.filepath)
        except (SketchFileError, sources.SourceError) as exc:
            return self._fail(scene, str(exc))
        src = _matching_clip_source(sketch.source_path, sketch.source_start_number, scene)
        if src is None:            # no clip of its footage: source frame i goes to scene frame 1 + i
            indices = [frame.index for frame in sketch.frames]
            src = sources.Source(f"file:{sketch.source_path or os.path.abspath(self.filepath)}",
                                 os.path.splitext(os.path.basename(sketch.source_path or self.filepath))[0],
                                 sketch.source_path if os.path.isfile(sketch.source_path) else "", scene.name,
                                 1, (min(indices), max(indices) + 1))
        try:
            obj = build_result(scene, sketch, src, self.background, self.match_scene)
        except Exception as exc:  # one line for the user, nothing half-built is left
            return self._fail(scene, f"DynaSketch could not build the sketch: {exc}")
        note = style_result(obj, self, scene, self.background)
        message = f"Imported {frames_text(len(sketch.frames))} into {obj.name}"
        if not sketch.complete:
            message += " (the sketch is incomplete: its run was interrupted)"
        if note:
            message += f"; {note}"
        scene.dynasketch.status, scene.dynasketch.failed = message, False
        self.report({"WARNING"} if not sketch.complete or note else {"INFO"}, message)
        return {"FINISHED"}

    def _fail(self, scene, message: str) -> set:
        scene.dynasketch.status, scene.dynasketch.failed = message, True
        self.report({"ERROR"}, message)
        return {"CANCELLED"}


def style_result(obj, look, scene, background: str) -> str:
    """Give a new result the style of ``look`` (the scene's settings or Import's options): its
    medium, line colour and boil, and the medium's paper on a Paper background. A note, or ""."""
    shown_in = obj.users_scene[0] if obj.users_scene else scene        # a strip's sketch scene
    note = styles.apply_style(obj, look.style, look.line_colour, look.line_custom, look.boil)
    if background == "paper":
        styles.set_paper(shown_in, look.style)
    return note


class DYNASKETCH_OT_apply_style(bpy.types.Operator):
    """Restyle a DynaSketch result with the Result panel's Style, Line Colour and Boil, without
    sketching again"""

    bl_idname = "dynasketch.apply_style"
    bl_label = "Apply Style"
    bl_options = {"REGISTER", "UNDO"}

    object: StringProperty(name="Object", default="", options={"SKIP_SAVE"},
                           description="Name of the result to restyle (default: the Target, else the active object)")

    def execute(self, context):
        settings = sources.settings_scene(context).dynasketch
        if self.object:
            obj = bpy.data.objects.get(self.object)
            if obj is None:
                return self._fail(settings, f"no object named {self.object!r}")
        else:
            obj = settings.target_object or context.active_object
        try:
            scene = obj.users_scene[0] if obj is not None and obj.users_scene else context.scene
            note = styles.apply_style(obj, settings.style, settings.line_colour, settings.line_custom,
                                      settings.boil, scene)
        except styles.StyleError as exc:
            return self._fail(settings, f"DynaSketch: {exc}")
        label = styles.MEDIA[settings.style].label
        settings.status, settings.failed = f"{obj.name} restyled: {label}" + (f" ({note})" if note else ""), False
        self.report({"WARNING"} if note else {"INFO"}, settings.status)
        return {"FINISHED"}

    def _fail(self, settings, message: str) -> set:
        settings.status, settings.failed = message, True
        self.report({"ERROR"}, message)
        return {"CANCELLED"}


def _matching_clip_source(path: str, start_number: int | None, scene):
    """The loaded movie clip of the same footage (or, for a sketch made on another machine,
    of the same file name), so frames land where the clip plays them. ``path`` is the
    sketch's source: a movie, or an image sequence's pattern (read from ``start_number``)."""
    if not path:
        return None
    found = []
    for clip in bpy.data.movieclips:
        try:
            src = sources.from_clip(clip, scene)
        except sources.SourceError:
            continue
        if start_number is not None and (src.images is None or src.images.start != start_number):
            continue
        footage = src.engine_input()[0]
        try:
            same = footage == path or os.path.samefile(footage, path)
        except OSError:
            same = False
        if same or os.path.basename(footage) == os.path.basename(path):
            found.append((not same, src))
    return min(found, key=lambda f: f[0])[1] if found else None


class DYNASKETCH_OT_check_engine(bpy.types.Operator):
    """Run `dynasketch doctor` and show what the engine can use on this machine"""

    bl_idname = "dynasketch.check_engine"
    bl_label = "Check Engine"

    def execute(self, context):
        prefs = preferences(context)
        try:
            command = engine_command(context)
        except EngineNotFound as exc:
            report = str(exc)
            self.report({"ERROR"}, report)
        else:
            report = f"engine: {command}\n" + run_doctor(command, model_folder(context))
            self.report({"INFO"}, "Engine checked: see DynaSketch's preferences")
        if prefs:
            prefs.doctor_report = report
        else:
            print(report)
        return {"FINISHED"}


class DYNASKETCH_OT_reset_settings(bpy.types.Operator):
    """Set this scene's DynaSketch settings to the defaults of the add-on preferences"""

    bl_idname = "dynasketch.reset_settings"
    bl_label = "Reset to Preferences"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        prefs = preferences(context)
        if prefs is None:
            self.report({"WARNING"}, "DynaSketch is not enabled as an add-on: no preferences to copy")
            return {"CANCELLED"}
        apply_defaults(sources.settings_scene(context).dynasketch, prefs, force=True)
        return {"FINISHED"}


class DYNASKETCH_OT_remove_job_folders(bpy.types.Operator):
    """Remove the job folders in the Work Folder (the engine's frames, logs and previews, kept
    so that a sketch can resume). Sketched scenes keep their strokes; a job still running is left"""

    bl_idname = "dynasketch.remove_job_folders"
    bl_label = "Remove Job Folders"

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        root = work_folder(context)
        removed, freed, busy = job_folders.remove_all(root)
        message = f"Removed {removed} job folder{'s' * (removed != 1)} ({freed / 1e6:.1f} MB) from {root}"
        if busy:
            message += f"; {busy} in use kept"
        self.report({"INFO"}, message)
        return {"FINISHED"}


_download: ModelDownload | None = None       # the download running in this Blender session


class StatusJobOperator(EngineJobOperator):
    """An ``EngineJobOperator`` whose live status is a window-manager property group
    (``status_name``: running, progress, status, failed, and ``last_line`` where it has one),
    which the preferences draw."""

    status_name = ""

    def _status(self, context):
        return getattr(context.window_manager, self.status_name)

    def _failure(self) -> str:
        return self._job.error

    def _fail(self, context, message: str) -> bool:
        status = self._status(context)
        status.running, status.failed, status.status = False, True, message
        self.report({"ERROR"}, message)
        return False

    def _update(self, context) -> str:
        state = self._job.step()
        status = self._status(context)
        status.progress, status.status = self._job.progress, self._job.message
        if hasattr(status, "last_line"):
            status.last_line = getattr(self._job, "last_line", "")
        return state

    def _finish(self, context, state: str) -> set:
        status = self._status(context)
        status.running, status.status = False, self._job.message
        if hasattr(status, "last_line"):
            status.last_line = ""
        if state == DONE:
            status.failed = False
            prefs = preferences(context)
            if prefs:
                prefs.doctor_report = ""        # it described the engine or folder before the job
            # a part the job could do without that failed (Install Engine's masking model) is a warning
            self.report({"WARNING"} if getattr(self._job, "warning", "") else {"INFO"}, self._job.message)
            return {"FINISHED"}
        if state == CANCELLED:
            status.failed = False
            self.report({"WARNING"}, self._job.message)
            return {"CANCELLED"}
        self._fail(context, self._failure())
        return {"CANCELLED"}


class DYNASKETCH_OT_download_models(StatusJobOperator, bpy.types.Operator):
    """Download the chosen weight files into the Model Folder (`dynasketch models download`;
    Esc stops, and a stopped download resumes)"""

    bl_idname = "dynasketch.download_models"
    bl_label = "Download Models"
    status_name = "dynasketch_download"

    def _start(self, context) -> bool:
        global _download
        status = context.window_manager.dynasketch_download
        if download_running():                                        # its status stays as it is
            self.report({"ERROR"}, "DynaSketch: a download is already running (its ✕ button stops it)")
            return False
        if not bpy.app.online_access:
            return self._fail(context, "Blender's online access is off: allow it in Preferences > System > "
                                       "Network (or run `dynasketch models download` in a terminal)")
        prefs = preferences(context)
        names = [name for name, _, _ in AUTO_MODELS if prefs is None or name in prefs.download_models]
        if not names:
            return self._fail(context, "choose at least one model to download")
        try:
            _download = self._job = ModelDownload(engine_command(context), names, model_folder(context))
        except EngineNotFound as exc:
            return self._fail(context, f"DynaSketch: {exc}")
        if _download.start() != RUNNING:
            return self._fail(context, _download.error)
        status.running, status.failed, status.progress, status.status = True, False, 0.0, _download.message
        return True


def download_running() -> bool:
    return _download is not None and _download.state == RUNNING


class DYNASKETCH_OT_cancel_download(bpy.types.Operator):
    """Stop the model download; the partial file stays, and Download Models resumes it"""

    bl_idname = "dynasketch.cancel_download"
    bl_label = "Cancel Download"

    def execute(self, context):
        if _download is not None:
            _download.cancel()
        return {"FINISHED"}


def menu_import(self, context):
    self.layout.operator(DYNASKETCH_OT_import_sketch.bl_idname, text="DynaSketch Sketch (.json)")


CLASSES = (DYNASKETCH_OT_sketch, DYNASKETCH_OT_cancel, DYNASKETCH_OT_import_sketch, DYNASKETCH_OT_apply_style,
           DYNASKETCH_OT_check_engine, DYNASKETCH_OT_download_models, DYNASKETCH_OT_cancel_download,
           DYNASKETCH_OT_reset_settings, DYNASKETCH_OT_remove_job_folders)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister() -> None:
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
