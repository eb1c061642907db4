"""Correct once, carried through: an artist's edit of one frame of a DynaSketch result, carried
through the frames after it by the engine (``dynasketch sketch --revise``, docs/CONTRACT.md).

Re-Sketch From Here reads the Grease Pencil drawing shown at the current frame (each stroke's
``dynasketch_id``; a stroke the artist drew gets a new id), writes it as the engine's edit file,
runs the engine as the Sketch operator does (progress bar, Cancel) and replaces the keyframes
after it on the Sketch layer. Delete Stroke Everywhere removes the selected strokes, by id,
from this frame on (or on every frame); Lock keeps the selected strokes as drawn in the next
re-sketch. The work is in functions the tests call; the operators only drive them.
"""
from __future__ import annotations

import json
import os

import bpy
from bpy.props import BoolProperty

from . import job_folders
from .engine_process import EngineNotFound, EngineJob
from .grease_pencil_builder import LAYER_NAME, STROKE_ID, STROKE_LOCKED, Placement, fill_drawing, ink_material
from .operators import EngineJobOperator, _cancel_requested, engine_command, frames_text, model_folder
from .sketch_file import SketchFileError, load_sketch
from .sketch_job import CANCELLED, DONE, RUNNING, SketchJob

BEZIER = 2                                      # a stroke's curve_type (POLY is 1, CATMULL_ROM 0)


class ReviseError(Exception):
    """Why a revision cannot be made here; one line for the user."""


# -- the result and its keyframe at a frame ----------------------------------------------------
def result_object(context):
    """The DynaSketch result to revise: the active object, else the Result panel's Target."""
    for obj in (context.active_object, getattr(getattr(context.scene, "dynasketch", None), "target_object", None)):
        if obj is not None and obj.type == "GREASEPENCIL" and "dynasketch_sketch" in obj:
            return obj
    return None


def scene_of(obj, context):
    return context.scene if obj.name in context.scene.objects else (obj.users_scene[0] if obj.users_scene else context.scene)


def keyframe_at(obj, frame: int):
    """The Sketch layer's keyframe shown at scene ``frame`` and the sketched frame index it holds."""
    layer = obj.data.layers.get(LAYER_NAME)
    if layer is None:
        raise ReviseError(f"{obj.name} has no {LAYER_NAME} layer to revise")
    shown = [f for f in layer.frames if f.frame_number <= frame]
    if not shown:
        raise ReviseError(f"{obj.name} shows no sketched frame at frame {frame}")
    key = max(shown, key=lambda f: f.frame_number)
    keys, indices = list(obj.get("dynasketch_keyframes", [])), list(obj.get("dynasketch_indices", []))
    if key.frame_number in keys:
        return key, indices[keys.index(key.frame_number)]
    if keys and key.frame_number < keys[0] and len(key.drawing.strokes):     # the first drawing, shown before
        return next(f for f in layer.frames if f.frame_number == keys[0]), indices[0]
    raise ReviseError(f"frame {frame} of {obj.name} holds no sketched frame (build it with Sketch first)")


def job_folder(obj) -> str:
    return os.path.dirname(bpy.path.abspath(obj["dynasketch_sketch"]))


# -- the drawing as the engine's edit ------------------------------------------------------------
def _values(drawing, name: str, domain_size: int, width: int, default=0.0) -> list:
    attr = drawing.attributes.get(name)
    if attr is None:
        return [default] * (domain_size * width) if width > 1 else [default] * domain_size
    out = [default] * (domain_size * width)
    attr.data.foreach_get("vector" if width > 1 else "value", out)
    return out


def _pixel(placement: Placement, x: float, y: float) -> list[float]:
    s = placement.plane_height / placement.height
    return [round(x / s + placement.width / 2.0, 4), round(placement.height / 2.0 - y / s, 4)]


def drawing_edit(drawing, placement: Placement, next_id: int) -> tuple[list[dict], list[int]]:
    """The drawing's strokes as the edit's stroke records (source pixels), and their ids in
    stroke order. A Bezier stroke keeps its handles; a stroke drawn freehand becomes the cubics
    of its polyline (handles a third along each piece), so it is kept as drawn. A stroke without
    an id of its own (drawn by the artist, or a copy of another) gets a new one from ``next_id``."""
    count = len(drawing.strokes)
    points = sum(len(s.points) for s in drawing.strokes)
    pos = _values(drawing, "position", points, 3)
    left = _values(drawing, "handle_left", points, 3)
    right = _values(drawing, "handle_right", points, 3)
    radius = _values(drawing, "radius", points, 1, 0.01)
    opacity = _values(drawing, "opacity", points, 1, 1.0)
    ids = _values(drawing, STROKE_ID, count, 1, 0)
    locked = _values(drawing, STROKE_LOCKED, count, 1, False)
    records, seen, order, start = [], set(), [], 0
    for i, stroke in enumerate(drawing.strokes):
        n = len(stroke.points)
        knots = [(pos[3 * k], pos[3 * k + 1]) for k in range(start, start + n)]
        if stroke.curve_type == BEZIER:
            control = [knots[0]]
            for k in range(start, start + n - 1):
                control += [(right[3 * k], right[3 * k + 1]), (left[3 * k + 3], left[3 * k + 4]), knots[k - start + 1]]
        else:
            control = [knots[0]]
            for (ax, ay), (bx, by) in zip(knots, knots[1:]):
                control += [(ax + (bx - ax) / 3, ay + (by - ay) / 3), (ax + 2 * (bx - ax) / 3, ay + 2 * (by - ay) / 3),
                            (bx, by)]
        widths = [2.0 * r * placement.height / placement.plane_height for r in radius[start:start + n]]
        start += n
        if n < 2:                      # a dot is no stroke to carry
            continue
        sid = int(ids[i])
        if stroke.curve_type != BEZIER or sid in seen:
            sid, next_id = next_id, next_id + 1
        seen.add(sid)
        record = {"id": sid, "points": [_pixel(placement, x, y) for x, y in control],
                  "width": round(sum(widths) / len(widths), 4), "opacity": round(float(opacity[start - n]), 4)}
        if max(widths) - min(widths) > 0.01 * max(widths):
            record["widths"] = [round(w, 4) for w in widths]
        if locked[i]:
            record["locked"] = True
        records.append(record)
        order.append((i, sid))
    return records, order


def write_edit(obj, key, index: int) -> str:
    """The edit file of the drawing at ``key`` (sketched frame ``index``) in the job folder; the
    new ids are written to the drawing too, so its strokes match the frames the engine writes."""
    sketch = load_sketch(bpy.path.abspath(obj["dynasketch_sketch"]))
    placement = Placement(sketch.width, sketch.height)
    used = [s.id for f in sketch.frames for s in f.strokes]
    strokes, order = drawing_edit(key.drawing, placement, max(used, default=-1) + 1)
    if not strokes:
        raise ReviseError("the drawing at this frame has no strokes to carry; draw one, or Sketch again")
    ids = key.drawing.attributes.get(STROKE_ID) or key.drawing.attributes.new(STROKE_ID, "INT", "CURVE")
    for i, sid in order:
        ids.data[i].value = sid
    path = os.path.join(job_folder(obj), f"revise-frame-{index:06d}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"frame": index, "source": {"path": sketch.source_path, "frames": sketch.source_frames},
                   "strokes": strokes}, f)
    return path


# -- the engine job --------------------------------------------------------------------------------
class ReviseJob(SketchJob):
    """``dynasketch sketch ... --revise EDITS.json`` in the job folder of the result, with the
    arguments its Sketch ran with (the job record); read like a Sketch job."""

    def __init__(self, engine, folder: str, edits: str, model_dir: str = ""):
        arguments = job_folders.read_record(folder).get("arguments")
        if not arguments:
            raise ReviseError(f"{folder} does not say how its sketch was made (sketched by an older add-on): "
                              "Sketch again, then revise")
        self.source, self.warning, self.mask_raster = None, "", None
        self.out = folder
        self.log = os.path.join(folder, "dynasketch.log")
        self.sketch_path = os.path.join(folder, "sketch.json")
        EngineJob.__init__(self, list(engine.prefix) + list(arguments) + ["--revise", edits, "--progress", "json"],
                           {"DYNASKETCH_HOME": model_dir} if model_dir else {}, engine.cwd)

    def start(self) -> str:
        return EngineJob.start(self)


def replace_after(obj, sketch, index: int) -> int:
    """Write the sketch's frames after ``index`` into the Sketch layer's keyframes that hold
    them; other layers and the keyframes before stay. Returns how many were replaced."""
    layer = obj.data.layers[LAYER_NAME]
    keys, indices = list(obj["dynasketch_keyframes"]), list(obj["dynasketch_indices"])
    frames = {f.index: f for f in sketch.frames}
    ink = ink_material()
    slot = next((i for i, m in enumerate(obj.data.materials) if m == ink), None)
    if slot is None:
        obj.data.materials.append(ink)
        slot = len(obj.data.materials) - 1
    placement = Placement(sketch.width, sketch.height)
    replaced = 0
    for number, i in zip(keys, indices):
        if i <= index or i not in frames:
            continue
        key = next((f for f in layer.frames if f.frame_number == number), None)
        if key is None:                         # the artist removed it: it is sketched again
            key = layer.frames.new(number)
        elif len(key.drawing.strokes):
            key.drawing.remove_strokes()
        fill_drawing(key.drawing, frames[i].strokes, placement, slot)
        replaced += 1
    return replaced


# -- the operators ---------------------------------------------------------------------------------
def selected_ids(drawing) -> set[int]:
    ids = _values(drawing, STROKE_ID, len(drawing.strokes), 1, 0)
    return {int(ids[i]) for i, s in enumerate(drawing.strokes) if s.select or any(p.select for p in s.points)}


def delete_everywhere(obj, frame: int, from_here: bool = True) -> tuple[set[int], int]:
    """Remove the strokes selected at ``frame``, by id, from every keyframe of the Sketch
    layer from that one on (or on every one); returns the ids and the strokes removed."""
    key, _ = keyframe_at(obj, frame)
    doomed = selected_ids(key.drawing)
    if not doomed:
        raise ReviseError("select the strokes to delete (Edit Mode) at this frame")
    removed = 0
    for f in obj.data.layers[LAYER_NAME].frames:
        if from_here and f.frame_number < key.frame_number:
            continue
        ids = _values(f.drawing, STROKE_ID, len(f.drawing.strokes), 1, -1)
        gone = [i for i, sid in enumerate(ids) if sid in doomed]
        if gone:
            f.drawing.remove_strokes(indices=gone)
            removed += len(gone)
    return doomed, removed


def lock_selected(obj, frame: int, lock: bool = True) -> int:
    """Mark the strokes selected at ``frame`` to be kept as drawn (or not) by the next re-sketch."""
    key, _ = keyframe_at(obj, frame)
    drawing = key.drawing
    chosen = [s.select or any(p.select for p in s.points) for s in drawing.strokes]
    if not any(chosen):
        raise ReviseError("select the strokes to lock (Edit Mode) at this frame")
    attr = drawing.attributes.get(STROKE_LOCKED) or drawing.attributes.new(STROKE_LOCKED, "BOOLEAN", "CURVE")
    for i, yes in enumerate(chosen):
        if yes:
            attr.data[i].value = lock
    return sum(chosen)


def _result_poll(context) -> bool:
    settings = getattr(context.scene, "dynasketch", None)
    return result_object(context) is not None and not (settings and settings.running)


class DYNASKETCH_OT_resketch_from_here(EngineJobOperator, bpy.types.Operator):
    """Carry the drawing at this frame (strokes moved, deleted, drawn) through the frames after
    it: the engine sketches them again from it (Esc stops)"""

    bl_idname = "dynasketch.resketch_from_here"
    bl_label = "Re-Sketch From Here"
    bl_options = {"UNDO"}

    @classmethod
    def poll(cls, context):
        return _result_poll(context)

    def _settings(self):
        return bpy.data.scenes[self._scene_name].dynasketch

    def _start(self, context) -> bool:
        self._scene_name = context.scene.name
        obj = result_object(context)
        try:
            if obj is None:
                raise ReviseError("select a DynaSketch result (its Grease Pencil object)")
            self._obj_name = obj.name
            frame = scene_of(obj, context).frame_current
            key, self._index = keyframe_at(obj, frame)
            edits = write_edit(obj, key, self._index)
            self._job = ReviseJob(engine_command(context), job_folder(obj), edits, model_folder(context))
        except (ReviseError, SketchFileError, EngineNotFound, OSError) as exc:
            return self._fail(f"DynaSketch: {exc}")
        if self._job.start() != RUNNING:
            return self._fail(self._job.error)
        settings = self._settings()
        settings.running, settings.failed, settings.progress = True, False, 0.0
        settings.status, settings.log_path = self._job.message, self._job.log
        return True

    def _fail(self, message: str) -> bool:
        settings = self._settings()
        settings.running, settings.failed, settings.status = False, True, message
        self.report({"ERROR"}, message)
        return False

    def _stop_requested(self) -> bool:
        return self._scene_name in _cancel_requested

    def _ended(self) -> None:
        _cancel_requested.discard(self._scene_name)

    def _update(self, context) -> str:
        state = self._job.step()
        settings = self._settings()
        settings.progress, settings.status, settings.log_path = self._job.progress, self._job.message, self._job.log
        return state

    def _finish(self, context, state: str) -> set:
        settings = self._settings()
        settings.running = False
        if state == CANCELLED:
            settings.failed = False
            settings.status = "Cancelled: the drawing is unchanged (Re-Sketch From Here again goes on)"
            self.report({"WARNING"}, settings.status)
            return {"CANCELLED"}
        sketch = self._job.load() if state == DONE else None
        if sketch is None:
            self._fail(self._job.error)
            return {"CANCELLED"}
        obj = bpy.data.objects[self._obj_name]
        count = replace_after(obj, sketch, self._index)
        settings.failed = False
        settings.status = f"Re-sketched {frames_text(count)} of {obj.name} after frame {self._index}"
        self.report({"INFO"}, settings.status)
        return {"FINISHED"}


class DYNASKETCH_OT_delete_stroke_everywhere(bpy.types.Operator):
    """Delete the selected strokes from this frame on (or on every frame), wherever they are"""

    bl_idname = "dynasketch.delete_stroke_everywhere"
    bl_label = "Delete Stroke Everywhere"
    bl_options = {"REGISTER", "UNDO"}

    every_frame: BoolProperty(name="Every Frame", default=False,
                              description="Also from the frames before this one (else from this frame on)")

    @classmethod
    def poll(cls, context):
        return _result_poll(context)

    def execute(self, context):
        obj = result_object(context)
        try:
            ids, removed = delete_everywhere(obj, scene_of(obj, context).frame_current, not self.every_frame)
        except ReviseError as exc:
            self.report({"ERROR"}, f"DynaSketch: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Deleted stroke{'s' if len(ids) > 1 else ''} {', '.join(map(str, sorted(ids)))} "
                              f"({removed} on all frames)")
        return {"FINISHED"}


class DYNASKETCH_OT_lock_strokes(bpy.types.Operator):
    """Keep the selected strokes as drawn in the next Re-Sketch From Here (they move with the subject)"""

    bl_idname = "dynasketch.lock_strokes"
    bl_label = "Lock"
    bl_options = {"REGISTER", "UNDO"}

    lock: BoolProperty(name="Lock", default=True, description="Keep as drawn (off: refine them like the others)")

    @classmethod
    def poll(cls, context):
        return _result_poll(context)

    def execute(self, context):
        obj = result_object(context)
        try:
            count = lock_selected(obj, scene_of(obj, context).frame_current, self.lock)
        except ReviseError as exc:
            self.report({"ERROR"}, f"DynaSketch: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"{'Locked' if self.lock else 'Unlocked'} {count} stroke{'s' if count > 1 else ''}")
        return {"FINISHED"}


CLASSES = (DYNASKETCH_OT_resketch_from_here, DYNASKETCH_OT_delete_stroke_everywhere, DYNASKETCH_OT_lock_strokes)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
