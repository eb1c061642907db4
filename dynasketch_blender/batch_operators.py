"""Sketch Selected Strips (Sequencer): every selected strip sketched by one ``dynasketch
batch`` on Ray (local, or the Ray Address of the preferences), one progress bar, Cancel (or
Esc), each strip's result built as soon as its sketch is done (strip_batch.py)."""
from __future__ import annotations

import bpy

from . import source as sources
from .engine_process import EngineNotFound
from .operators import (EngineJobOperator, _cancel_requested, check_local, engine_command, job_options,
                        model_folder, work_folder)
from .preferences import preferences
from .sketch_job import CANCELLED, DONE, RUNNING, SketchJob, build_result
from .strip_batch import StripBatchJob, selected_strips


class StripBatchRun:
    """One Sketch Selected Strips in the scene ``scene_name``, as step functions the modal
    operator calls on its timer (and tests call, where modal operators do not run): ``start``,
    ``update`` until it is not RUNNING, ``finish``; ``job.cancel()`` at any time."""

    def __init__(self, scene_name: str):
        self.scene_name = scene_name
        self.job: StripBatchJob | None = None
        self.built: list[str] = []                 # the objects built, in the order they finished
        self.errors: list[str] = []

    @property
    def settings(self):
        return bpy.data.scenes[self.scene_name].dynasketch

    def start(self, context) -> str:
        """Start the batch; "" or why it cannot (the settings show it)."""
        scene = bpy.data.scenes[self.scene_name]
        settings = self.settings
        if settings.running:
            return self.fail("a sketch is already running in this scene (Cancel stops it)")
        settings.warning = ""
        try:
            check_local(scene)
            strips = selected_strips(scene)
            if not strips:
                raise sources.SourceError("select the movie or image strips to sketch in the Sequencer")
            if settings.mask_mode == "blender_mask":
                raise sources.SourceError("Subject: Blender Mask sketches one strip at a time (Sketch); "
                                          "for several strips choose Auto, None or a Mask File")
            prefs = preferences(context)
            engine = engine_command(context)
            jobs = []
            for strip in strips:
                src = sources.from_strip(strip, scene, count_frames=True)
                options = job_options(settings, src, prefs.default_device if prefs else "auto", work_folder(context))
                jobs.append(SketchJob(engine, src, options, model_folder(context), work_folder(context)))
            self.job = StripBatchJob(engine, jobs, model_folder(context), work_folder(context),
                                     prefs.ray_address.strip() if prefs else "")
        except (sources.SourceError, EngineNotFound) as exc:
            return self.fail(f"DynaSketch: {exc}")
        if self.job.start() != RUNNING:
            return self.fail(self.job.error)
        settings.running, settings.failed, settings.progress = True, False, 0.0
        settings.status, settings.log_path = self.job.message, self.job.log
        return ""

    def fail(self, message: str) -> str:
        settings = self.settings
        settings.running, settings.failed, settings.status = False, True, message
        return message

    def build_finished(self) -> None:
        """Build the strips whose sketch is done since the last tick (main thread)."""
        scene = bpy.data.scenes[self.scene_name]
        settings = self.settings
        for job in self.job.take_finished():
            sketch = job.load()
            if sketch is None:
                self.errors.append(f"{job.source.label}: {job.error}")
                continue
            try:
                obj = build_result(scene, sketch, job.source, settings.background, settings.match_scene)
            except Exception as exc:  # one line; the other strips go on
                self.errors.append(f"{job.source.label}: could not build the result: {exc}")
                continue
            self.built.append(obj.name)

    def update(self) -> str:
        state = self.job.step()
        self.build_finished()
        settings = self.settings
        settings.progress, settings.status = self.job.progress, self.job.message
        settings.warning = self.job.warning
        return state

    def finish(self, state: str) -> tuple[set, str, str]:
        """The operator's result, and the report's level and line (also the panel's status)."""
        settings = self.settings
        settings.running = False
        self.build_finished()
        built = f"{len(self.built)} of {len(self.job.jobs)} strips sketched"
        if state == CANCELLED:
            settings.failed = False
            settings.status = f"Cancelled: {built}; Sketch Selected Strips again resumes the others"
            return {"CANCELLED"}, "WARNING", settings.status
        if state == DONE and not self.errors:
            settings.failed = False
            settings.status = f"Sketched {len(self.built)} strips ({', '.join(self.built)})"
            return {"FINISHED"}, "INFO", settings.status
        why = self.job.error if state != DONE else "; ".join(self.errors)
        self.fail(f"{built}. {why}" if self.built else why)
        settings.log_path = self.job.log
        return ({"FINISHED"} if self.built else {"CANCELLED"}), "ERROR", settings.status


class DYNASKETCH_OT_sketch_strips(EngineJobOperator, bpy.types.Operator):
    """Sketch every selected movie or image strip, on Ray (a local one, or the cluster set in the
    add-on preferences); each strip's sketch is built as it finishes (Esc or Cancel stops)"""

    bl_idname = "dynasketch.sketch_strips"
    bl_label = "Sketch Selected Strips"
    bl_options = {"UNDO"}

    def _start(self, context) -> bool:
        self._run = StripBatchRun(sources.sequencer_scene(context).name)
        _cancel_requested.discard(self._run.scene_name)
        error = self._run.start(context)
        if error:
            self.report({"ERROR"}, error)
            return False
        self._job = self._run.job
        return True

    def _update(self, context) -> str:
        return self._run.update()

    def _finish(self, context, state: str) -> set:
        result, level, message = self._run.finish(state)
        self.report({level}, message)
        return result

    def _stop_requested(self) -> bool:
        return self._run.scene_name in _cancel_requested

    def _ended(self) -> None:
        _cancel_requested.discard(self._run.scene_name)


CLASSES = (DYNASKETCH_OT_sketch_strips,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
