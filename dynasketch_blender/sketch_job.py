"""A sketch job as step functions, so the modal operator (and tests, where modal operators
do not run) drive it the same way: ``start()``, then ``step()`` until it is not RUNNING,
then ``build_result()`` in the main thread; ``cancel()`` at any time."""
from __future__ import annotations

import hashlib
import os
import tempfile

import bpy

from . import scene_setup
from .engine_process import EngineProcess
from .grease_pencil_builder import Placement, build_sketch_object

RUNNING, DONE, FAILED, CANCELLED = "RUNNING", "DONE", "FAILED", "CANCELLED"


def output_folder(source_path: str, args: list[str]) -> str:
    """One folder per clip and settings, so the same job resumes after a cancel."""
    digest = hashlib.sha1("\0".join([source_path] + args).encode()).hexdigest()[:12]
    name = os.path.splitext(os.path.basename(source_path))[0]
    return os.path.join(tempfile.gettempdir(), "dynasketch", f"{name}-{digest}")


class SketchJob:
    def __init__(self, prefix: list[str], source, options: dict, model_dir: str = ""):
        self.source = source
        first, last, step = options["frames"]
        args = ["--strokes", str(options["strokes"]), "--width", f"{options['width']:g}",
                "--frames", f"{first}:{last}:{step}", "--seeds", str(options["seeds"]),
                "--mask", options["mask"], "--device", options["device"], "--preset", options["preset"]]
        self.out = output_folder(source.path, args)
        self.command = prefix + ["sketch", source.path, "--out", self.out, *args, "--progress", "json"]
        env = {"DYNASKETCH_HOME": model_dir} if model_dir else {}
        self.process = EngineProcess(self.command, env)
        self.state = RUNNING
        self.progress = 0.0
        self.message = "starting the engine"
        self.error = ""
        self.log = os.path.join(self.out, "dynasketch.log")
        self.sketch_path = os.path.join(self.out, "sketch.json")

    def start(self) -> None:
        try:
            self.process.start()
        except OSError as exc:
            self._fail(f"the engine did not start: {exc}")

    def step(self) -> str:
        """Read what the engine said since the last step; returns the job's state."""
        if self.state != RUNNING:
            return self.state
        for event in self.process.events():
            total = event.get("total") or 0
            if total:
                self.progress = min(1.0, event.get("done", 0) / total)
            self.message = f"{event.get('stage', '')}: {event.get('message', '')}".strip(": ")
            if event.get("log"):
                self.log = event["log"]
            if event.get("event") == "done":
                self.sketch_path = event.get("sketch", self.sketch_path)
        code = self.process.returncode()
        if code is None:
            return RUNNING
        for event in self.process.events():           # lines that arrived with the exit
            if event.get("event") == "done":
                self.sketch_path = event.get("sketch", self.sketch_path)
        if code == 0:
            self.state, self.progress, self.message = DONE, 1.0, "building Grease Pencil strokes"
        elif code == 130:
            self.state, self.message = CANCELLED, "cancelled"
        else:
            reason = self.process.last_error() or f"the engine stopped with exit code {code}"
            self._fail(reason)
        return self.state

    def cancel(self) -> None:
        if self.state == RUNNING:
            self.process.stop(grace=1.0)
            self.state, self.message = CANCELLED, "cancelled"

    def _fail(self, reason: str) -> None:
        self.state = FAILED
        log = f" (log: {self.log})" if os.path.exists(self.log) else ""
        self.error = f"DynaSketch failed: {reason}{log}"
        self.message = self.error


def build_result(scene: bpy.types.Scene, sketch, key: str, label: str, scene_frame_of,
                 background: str = "paper", match: bool = True, movie_clip=None,
                 movie_path: str = "") -> bpy.types.Object:
    """Build the Grease Pencil object, camera and background for ``sketch`` in a new
    collection; only when all of it is built does it replace the previous result of ``key``.
    Nothing is left behind if building fails."""
    placement = Placement(sketch.width, sketch.height)
    coll = scene_setup.new_collection(label)
    built = []
    try:
        obj = build_sketch_object(sketch, f"{label} Sketch", scene_frame_of)
        coll.objects.link(obj)
        built.append(obj)
        camera = scene_setup.add_camera(coll, placement, label, movie_clip)
        built.append(camera)
        frames = [f.index for f in sketch.frames]
        first, last = scene_frame_of(frames[0]), scene_frame_of(frames[-1])
        if background == "footage" and movie_path:
            built.append(scene_setup.add_footage_plane(coll, placement, label, movie_path,
                                                       scene_frame_of(0), max(frames) + 1))
    except Exception:
        for item in built:
            data = item.data
            bpy.data.objects.remove(item)
            if data is not None and data.users == 0:
                scene_setup.remove_data(data)
        bpy.data.collections.remove(coll)
        raise
    scene_setup.install(scene, coll, key, camera)
    scene_setup.apply_background(scene, background)
    if match:
        scene_setup.match_scene(scene, sketch, first, last)
    return obj


