"""A sketch job as step functions (``engine_process.EngineJob``), so the modal operator (and
tests, where modal operators do not run) drive it the same way: ``start()``, then ``step()``
until it is not RUNNING, then ``load()`` and ``build_result()`` in the main thread;
``cancel()`` at any time."""
from __future__ import annotations

import hashlib
import os
import re

import bpy

from . import job_folders, scene_setup, subject
from .engine_process import CANCELLED, DONE, FAILED, RUNNING, EngineCommand, EngineJob  # noqa: F401
from .grease_pencil_builder import Placement, build_sketch_object, replace_sketch_layer
from .sketch_file import SketchFileError, load_sketch

# Share of the progress bar each engine stage fills (docs/CONTRACT.md lists them in order).
STAGE_WEIGHTS = {"decode": 0.05, "mask": 0.05, "track": 0.10, "initialise": 0.10, "optimise": 0.65,
                 "export": 0.05}


def overall_progress(stage: str, done: int, total: int) -> float | None:
    if stage not in STAGE_WEIGHTS:
        return None
    before = 0.0
    for name, weight in STAGE_WEIGHTS.items():
        if name == stage:
            return before + weight * (min(1.0, done / total) if total else 0.0)
        before += weight
    return None


def output_folder(source_path: str, args: list[str], inputs: dict[str, str], work_dir: str = "") -> str:
    """One folder per clip, settings and input files (``inputs``: their stamps), so the same
    job resumes after a cancel and footage (or a mask) saved again after an edit is sketched
    afresh, not refused by the engine as other input in the old folder."""
    stamps = list(inputs.values())
    digest = hashlib.sha1("\0".join([source_path] + args + stamps).encode()).hexdigest()[:12]
    name = os.path.splitext(os.path.basename(source_path))[0]
    return os.path.join(job_folders.work_root(work_dir), f"{name}-{digest}")


def engine_arguments(options: dict) -> list[str]:
    first, last, step = options["frames"]
    return ["--strokes", str(options["strokes"]), "--width", f"{options['width']:g}",
            "--frames", f"{first}:{last}:{step}", "--seeds", str(options["seeds"]),
            *options["mask"], "--device", options["device"], "--preset", options["preset"]]


def in_blender_terms(message: str) -> str:
    """The engine's advice as it is followed in Blender: its commands are buttons here."""
    message = re.sub(r"run `dynasketch models download ([\w.-]+)`",
                     r"get \1 with Download Models (add-on preferences)", message)
    return re.sub(r"pick the subject with --subject \S+", "pick the subject with Subject: Box or Blender Mask",
                  message)


class SketchJob(EngineJob):
    def __init__(self, engine: EngineCommand, source, options: dict, model_dir: str = "", work_dir: str = ""):
        self.source = source
        self.warning = ""                              # the engine's latest warning event
        footage = source.engine_input()                # the movie, or an image sequence's pattern
        settings = engine_arguments(options)
        args = footage[1:] + settings
        # the footage's and mask's files; not how the footage is read (the colour config,
        # which a Blender update rewrites: where it matters, the engine's own resume check sees it)
        self.inputs = job_folders.input_stamps(source.files() + options["mask_files"] + settings)
        self.out = output_folder(source.path, args, self.inputs, work_dir)
        # A Blender Mask rendered for this job goes into its folder, named above by its content.
        self.mask_raster = options.get("mask_raster")
        if self.mask_raster is not None:
            self.mask_folder = os.path.join(self.out, subject.MASK_FOLDER)
            args = footage[1:] + engine_arguments({**options, "mask": self.mask_raster.arguments(self.mask_folder)})
        self.log = os.path.join(self.out, "dynasketch.log")
        self.sketch_path = os.path.join(self.out, "sketch.json")
        # The job folder is the add-on's own: the same job resumes there, and what the engine
        # would refuse as another sketch (e.g. weights found since make `auto` pick another
        # backend) is replaced. The result in the scene is only replaced once a run succeeds.
        self.arguments = ["sketch", footage[0], "--out", self.out, *args]     # a revision repeats them
        super().__init__(list(engine.prefix) + self.arguments + ["--overwrite", "--progress", "json"],
                         {"DYNASKETCH_HOME": model_dir} if model_dir else {}, engine.cwd)

    def start(self) -> str:
        try:                     # what the folder is for, so that it can be cleaned up later
            job_folders.write_record(self.out, self.source.path, self.inputs, self.arguments)
            if self.mask_raster is not None:
                self.mask_raster.place(self.mask_folder)
        except OSError as exc:
            if self.mask_raster is not None:
                self.mask_raster.discard()
            self._fail(f"cannot write the job folder {self.out} ({exc.strerror}); "
                       "choose another Work Folder in the add-on preferences")
            return self.state
        return super().start()

    def _read(self, events) -> None:
        super()._read(events)
        for event in events:
            kind = event.get("event")
            if kind == "warning":            # one line saying what to do; the run goes on
                self.warning = in_blender_terms(str(event.get("message", "")).strip())
                continue
            fraction = overall_progress(str(event.get("stage", "")), event.get("done") or 0, event.get("total") or 0)
            if fraction is not None and kind in ("start", "progress"):
                self.progress = max(self.progress, fraction)
            if event.get("message"):
                self.message = f"{event.get('stage', '')}: {event['message']}".strip(": ")
            if event.get("log"):
                self.log = event["log"]
            if kind == "done" and event.get("sketch"):
                self.sketch_path = event["sketch"]

    def _succeeded(self) -> None:
        self.message = "building Grease Pencil strokes"

    def load(self):
        """The finished sketch; a FAILED job (with the reason) if it cannot be read."""
        try:
            sketch = load_sketch(self.sketch_path)
        except SketchFileError as exc:
            self._fail(str(exc))
            return None
        if not sketch.complete:
            self._fail(f"the engine finished but {self.sketch_path} is marked incomplete")
            return None
        return sketch

    def _fail(self, reason: str) -> None:
        reason = reason.replace("run the same command again", "Sketch again")     # the engine's advice, here
        if not os.path.exists(self.log):
            self.log = self._write_engine_output()
        log = f" (log: {self.log})" if self.log else ""
        super()._fail(f"DynaSketch failed: {reason}{log}")

    def _write_engine_output(self) -> str:
        """When the engine stopped before writing its log: what it said, for the user."""
        path = os.path.join(self.out, "engine-output.log")
        try:
            os.makedirs(self.out, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write("command: " + " ".join(self.command) + "\n")
                f.write(f"exit code: {self.process.returncode()}\n")
                f.write("stderr:\n" + "\n".join(self.process.stderr) + "\n")
                f.write("other output:\n" + "\n".join(self.process.other_output) + "\n")
        except OSError:
            return ""
        return path


def build_result(scene: bpy.types.Scene, sketch, source, background: str = "paper", match: bool = True,
                 target=None) -> bpy.types.Object:
    """Build the Grease Pencil strokes, camera and background for ``sketch`` of ``source`` (a
    ``source.Source``: where its frames play, its movie clip and footage) beside the scene;
    only when all of it is built does it replace the previous result of the source (or the
    "Sketch" layer of ``target``). Nothing is left behind if building fails. A strip's sketch
    goes into a scene of its own, shown in the edit ``scene`` by a scene strip."""
    placement = Placement(sketch.width, sketch.height)
    label, indices = source.label, [f.index for f in sketch.frames]
    clip = bpy.data.movieclips.get(source.movie_clip_name) if source.movie_clip_name else None
    keyframes = source.keyframes(indices)
    # a complete sketch made every few frames covers its range to the end, not to its last
    # sample; played backwards, its first drawing is shown from the range's end on (an instance)
    through = sketch.source_frames[1] - 1 if sketch.complete and len(sketch.source_frames) == 3 else None
    first, last = source.drawn_span(indices, through)
    shown_from = first if first < min(keyframes) else None
    ended_at = source.span[1] + 1 if source.span else None        # past a strip the Sequencer shows nothing
    built = scene_setup.Building(label)
    try:
        if target is None:
            obj = built.add(build_sketch_object(sketch, f"{label} Sketch", keyframes, shown_from, ended_at))
        camera = built.add(scene_setup.new_camera(placement, label, clip))
        if background == "footage" and source.path:
            built.add(scene_setup.new_footage_plane(placement, label, source.path, source.footage_kind(),
                                                    *source.footage_pictures(), shown=source.span,
                                                    colorspace=source.colorspace))
        if target is not None:
            replace_sketch_layer(target, sketch, keyframes, shown_from, ended_at)     # the last step: it cannot fail half way
            obj = target
    except Exception:
        built.discard()
        raise
    edit = None
    if source.strip_name:
        # A strip's sketch gets a scene of its own, timed in the edit's frames, which a scene
        # strip over the strip shows in the edit (F12 renders the edit, not a camera): the
        # edit's own settings stay as they are, and the sketch scene always fits the footage.
        edit, scene = scene, scene_setup.sketch_scene(scene, source.key, label)
    built.install(scene, source.key, camera, target)
    scene_setup.apply_background(scene, background)
    if match or edit is not None:
        # a strip's scene plays at the edit's rate (a strip may play its movie at another)
        scene_setup.match_scene(scene, sketch, first, last, frame_rate=edit is None)
    if edit is not None:
        scene_setup.show_in_edit(edit, scene, source.strip_name, f"{label} Sketch")
    return obj
