"""The Grease Pencil builder: a ``Sketch`` becomes a Grease Pencil v3 object.

One layer "Sketch", one keyframe per sketched video frame (at the scene frame where that
video frame plays), the same strokes in the same order on every keyframe, as Bezier curves
with their handles filled from the cubic control points. Strokes lie in the XY plane
(z = 0) on a rectangle ``Placement.plane_width`` x ``Placement.plane_height`` centred at the
origin, with the clip's aspect ratio; ``Placement`` maps source pixels there.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy

LAYER_NAME = "Sketch"
INK_MATERIAL = "DynaSketch Ink"
STROKE_ID = "dynasketch_id"
STROKE_LOCKED = "dynasketch_locked"        # kept as drawn in the next re-sketch (revise.py)
FOOTAGE_COLOUR = "dynasketch_footage_colour"   # per point: the footage under the stroke (linear), for styles


@dataclass(frozen=True)
class Placement:
    """Source pixels (x right, y down) -> object space on the sketch plane."""

    width: int
    height: int
    plane_height: float = 2.0

    @property
    def plane_width(self) -> float:
        return self.plane_height * self.width / self.height

    def to_plane(self, x: float, y: float) -> tuple[float, float, float]:
        s = self.plane_height / self.height
        return ((x - self.width / 2.0) * s, (self.height / 2.0 - y) * s, 0.0)

    def radius(self, width_px: float) -> float:
        return 0.5 * width_px * self.plane_height / self.height


def grease_pencil_datablocks():
    """``bpy.data.grease_pencils`` on Blender 5, ``grease_pencils_v3`` on 4.3-4.5."""
    v3 = getattr(bpy.data, "grease_pencils_v3", None)      # an empty collection is falsy
    return v3 if v3 is not None else bpy.data.grease_pencils


def ink_material() -> bpy.types.Material:
    mat = bpy.data.materials.get(INK_MATERIAL)
    if mat is None or mat.grease_pencil is None:
        mat = bpy.data.materials.new(INK_MATERIAL)
        bpy.data.materials.create_gpencil_data(mat)
    style = mat.grease_pencil
    style.show_stroke, style.show_fill = True, False
    style.color = (0.0, 0.0, 0.0, 1.0)
    return mat


def bezier_handles(points: list) -> tuple[list, list, list]:
    """Cubic control points ``p0 c1 c2 p1 c1 c2 p2 ...`` -> knots, left and right handles.

    The outer handles of the first and last knot mirror their inner ones.
    """
    knots = points[0::3]
    right = [points[i + 1] for i in range(0, len(points) - 1, 3)]
    left = [points[i + 2] for i in range(0, len(points) - 1, 3)]
    first, last = knots[0], knots[-1]
    left = [[2 * first[0] - right[0][0], 2 * first[1] - right[0][1]]] + left
    right = right + [[2 * last[0] - left[-1][0], 2 * last[1] - left[-1][1]]]
    return knots, left, right


def _linear(c: float) -> float:
    """An sRGB value (0-1) in Blender's scene linear, as colour attributes hold colours."""
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _set_point_attribute(drawing, name: str, kind: str, values: list) -> None:
    attr = drawing.attributes.get(name) or drawing.attributes.new(name, kind, "POINT")
    field = {"FLOAT_VECTOR": "vector", "FLOAT_COLOR": "color"}.get(kind, "value")
    attr.data.foreach_set(field, values)


def fill_drawing(drawing, strokes: list, placement: Placement, material_index: int = 0) -> None:
    """Add ``strokes`` (contract strokes) to an empty drawing as Bezier curves."""
    drawing.add_strokes([(len(s.points) - 1) // 3 + 1 for s in strokes])
    drawing.set_types(type="BEZIER")
    pos, hl, hr, radius, opacity, colour = [], [], [], [], [], []
    for s in strokes:
        knots, left, right = bezier_handles(s.points)
        widths = s.widths or [s.width] * len(knots)          # an older sketch: even widths
        rgba = [*(_linear(c) for c in s.colour), 1.0] if s.colour else [0.0, 0.0, 0.0, 0.0]
        for k, lft, rgt, w in zip(knots, left, right, widths):
            pos.extend(placement.to_plane(*k))
            hl.extend(placement.to_plane(*lft))
            hr.extend(placement.to_plane(*rgt))
            radius.append(placement.radius(w))
            opacity.append(s.opacity)
            colour.extend(rgba)
    _set_point_attribute(drawing, "position", "FLOAT_VECTOR", pos)
    _set_point_attribute(drawing, "handle_left", "FLOAT_VECTOR", hl)
    _set_point_attribute(drawing, "handle_right", "FLOAT_VECTOR", hr)
    _set_point_attribute(drawing, "radius", "FLOAT", radius)
    _set_point_attribute(drawing, "opacity", "FLOAT", opacity)
    if any(s.colour for s in strokes):
        _set_point_attribute(drawing, FOOTAGE_COLOUR, "FLOAT_COLOR", colour)
    ids = drawing.attributes.get(STROKE_ID) or drawing.attributes.new(STROKE_ID, "INT", "CURVE")
    ids.data.foreach_set("value", [s.id for s in strokes])
    if any(getattr(s, "locked", False) for s in strokes):
        locks = drawing.attributes.get(STROKE_LOCKED) or drawing.attributes.new(STROKE_LOCKED, "BOOLEAN", "CURVE")
        locks.data.foreach_set("value", [bool(getattr(s, "locked", False)) for s in strokes])
    if material_index:
        mats = drawing.attributes.get("material_index") or drawing.attributes.new("material_index", "INT", "CURVE")
        mats.data.foreach_set("value", [material_index] * len(strokes))


def fill_layer(layer, sketch, keyframes: dict[int, int], material_index: int = 0, shown_from=None,
               ended_at=None) -> None:
    """A keyframe at each scene frame of ``keyframes`` ({scene frame: sketched frame index}).
    ``shown_from``: an earlier scene frame from which the first keyframe's drawing is shown too
    (where a strip holds its picture), as an instance: an edit of one is an edit of both.
    ``ended_at``: a later scene frame from which nothing is drawn (an empty keyframe)."""
    placement = Placement(sketch.width, sketch.height)
    frames = {frame.index: frame for frame in sketch.frames}
    for number, index in sorted(keyframes.items()):
        keyframe = layer.frames.new(number)
        fill_drawing(keyframe.drawing, frames[index].strokes, placement, material_index)
    if shown_from is not None:
        layer.frames.copy(min(keyframes), shown_from, instance_drawing=True)
    if ended_at is not None:
        layer.frames.new(ended_at)


def _tag(owner, sketch, keyframes: dict[int, int] | None = None) -> None:
    owner["dynasketch_sketch"] = sketch.path
    owner["dynasketch_source"] = sketch.source_path
    owner["dynasketch_size"] = [sketch.width, sketch.height]
    if keyframes:                 # which sketched frame each keyframe holds (revise.py)
        owner["dynasketch_keyframes"] = sorted(keyframes)
        owner["dynasketch_indices"] = [keyframes[k] for k in sorted(keyframes)]
    first = sketch.frames[0].strokes
    if first:                       # the strokes' one width, as a radius (the Marker style draws it)
        owner["dynasketch_radius"] = Placement(sketch.width, sketch.height).radius(first[0].width)


def build_sketch_object(sketch, name: str, keyframes: dict[int, int], shown_from=None,
                        ended_at=None) -> bpy.types.Object:
    """A new (unlinked) Grease Pencil object for ``sketch``, its frames keyed as ``fill_layer`` does."""
    data = grease_pencil_datablocks().new(name)
    try:
        data.materials.append(ink_material())
        fill_layer(data.layers.new(LAYER_NAME), sketch, keyframes, shown_from=shown_from, ended_at=ended_at)
        obj = bpy.data.objects.new(name, data)
    except Exception:
        grease_pencil_datablocks().remove(data)
        raise
    _tag(obj, sketch, keyframes)
    return obj


def replace_sketch_layer(obj: bpy.types.Object, sketch, keyframes: dict[int, int], shown_from=None,
                         ended_at=None) -> None:
    """Write ``sketch`` into the "Sketch" layer of an existing Grease Pencil object, leaving
    its other layers alone. The new layer is built beside the old one and swapped in at the
    end, so a failure leaves the object as it was."""
    data = obj.data
    ink = ink_material()
    slot = next((i for i, m in enumerate(data.materials) if m == ink), None)
    added_material = slot is None
    if added_material:
        data.materials.append(ink)
        slot = len(data.materials) - 1
    layer = data.layers.new(LAYER_NAME + " (building)")
    try:
        fill_layer(layer, sketch, keyframes, slot, shown_from, ended_at)
    except Exception:
        data.layers.remove(layer)
        if added_material:
            data.materials.pop(index=slot)
        raise
    old = data.layers.get(LAYER_NAME)
    if old is not None:
        data.layers.remove(old)
    layer.name = LAYER_NAME
    data.layers.active = layer
    _tag(obj, sketch, keyframes)
