"""Styles: how a result's strokes look, built from Grease Pencil's own materials and modifiers.

A style is a medium (Ink, Pencil, Brush, Marker, Chalk), a line colour (the medium's own, a
chosen colour, or the footage's under each stroke) and an optional boil. It is made of
things an artist can open and change afterwards:

* a material per medium, ``DynaSketch <Medium>`` (shared by every result; made once, so
  edits to it are kept when a style is applied again), with a generated grain texture for
  Pencil and Chalk;
* modifiers on the object, named ``DynaSketch ...`` and limited to the "Sketch" layer:
  Thickness (the medium's weight; Marker's even width; Brush's extra taper), Noise (Pencil and
  Chalk's rough edge), Tint (a chosen colour) and, for boil, a Noise modifier stepped on 2s;
* for footage colour, each stroke's ``vertex_color`` from the colour the engine measured
  under it (``sketch.json``'s ``colour``, steady over time).

``apply_style`` restyles a result without running the engine; other layers, materials and
modifiers of the object are left as they are.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import bpy

from .grease_pencil_builder import FOOTAGE_COLOUR, LAYER_NAME

PREFIX = "DynaSketch "
GRAIN_IMAGE = "DynaSketch Grain"
STYLE_KEY = "dynasketch_style"


class StyleError(Exception):
    """A style cannot be applied; the message says why and what to do."""


@dataclass(frozen=True)
class Medium:
    label: str
    description: str
    colour: tuple            # the medium's own colour (scene linear RGB)
    alpha: float = 1.0       # how opaque a line is
    thickness: float = 1.0   # times the engine's widths
    even: bool = False       # one width all along (the strokes' width), not the engine's widths
    taper: bool = False      # a stronger taper than the engine's, toward both ends
    grain: float = 0.0       # how much of a grain texture shows through the line (0: solid)
    rough: float = 0.0       # a steady ragged edge (Noise on thickness), 0: none
    paper: tuple | None = None   # the paper under it on a Paper background (None: white)


MEDIA = {
    "ink": Medium("Ink", "Black ink: thick and thin with the engine's line weight, tapered ends",
                  (0.005, 0.005, 0.005)),
    "pencil": Medium("Pencil", "Graphite: lighter, thinner lines with a grainy texture",
                     (0.035, 0.035, 0.04), alpha=0.9, thickness=0.75, grain=0.5, rough=0.25),
    "brush": Medium("Brush", "A loaded brush: heavier lines with a strong taper",
                    (0.003, 0.003, 0.003), thickness=1.7, taper=True),
    "marker": Medium("Marker", "A felt-tip marker: one even width, as sketches were drawn before line weight",
                     (0.01, 0.01, 0.01), even=True),
    "chalk": Medium("Chalk", "Chalk on a blackboard: light, grainy lines on dark paper",
                    (0.85, 0.85, 0.8), alpha=0.9, thickness=1.3, grain=0.6, rough=0.35,
                    paper=(0.012, 0.02, 0.016)),
}
STYLES = [(key, m.label, m.description) for key, m in MEDIA.items()]
COLOURS = [("medium", "Medium", "The medium's own colour: black ink, brush and marker, graphite pencil, "
                                "white chalk"),
           ("custom", "Colour", "One colour of your choice for every line"),
           ("footage", "Footage", "Each line the colour of the footage under it, frame by frame")]
DEFAULT_STYLE = "ink"
PAPER = (1.0, 1.0, 1.0)
BOIL_STEP = 2            # frames each boil pose holds: lines that wobble on 2s


def check_style(style: str) -> Medium:
    """The medium of ``style``, or a one-line refusal naming the styles there are."""
    medium = MEDIA.get(style)
    if medium is None:
        raise StyleError(f"unknown style {style!r}: use one of {', '.join(MEDIA)}")
    return medium


def is_result(obj) -> bool:
    """Whether ``obj`` holds a DynaSketch result (a Grease Pencil object with a "Sketch" layer
    that Sketch or Import DynaSketch wrote)."""
    return (obj is not None and obj.type == "GREASEPENCIL" and "dynasketch_sketch" in obj
            and obj.data.layers.get(LAYER_NAME) is not None)


def grain_image() -> bpy.types.Image:
    """A small tileable grain (white, its alpha speckled), packed into the file."""
    image = bpy.data.images.get(GRAIN_IMAGE)
    if image is not None:
        return image
    size = 128
    image = bpy.data.images.new(GRAIN_IMAGE, size, size, alpha=True)
    rng = random.Random(7)
    pixels = []
    for _ in range(size * size):
        pixels += (1.0, 1.0, 1.0, 1.0 - 0.8 * rng.random() ** 3)      # mostly covered, speckled
    image.pixels.foreach_set(pixels)
    image.pack()
    return image


def style_material(style: str) -> bpy.types.Material:
    """The medium's material, made the first time; an existing one (perhaps edited) is kept."""
    medium = check_style(style)
    name = PREFIX + medium.label
    mat = bpy.data.materials.get(name)
    if mat is not None and mat.grease_pencil is not None:
        return mat
    if mat is None:
        mat = bpy.data.materials.new(name)
    bpy.data.materials.create_gpencil_data(mat)
    gp = mat.grease_pencil
    gp.show_stroke, gp.show_fill = True, False
    gp.color = (*medium.colour, medium.alpha)
    if medium.grain:
        gp.stroke_style = "TEXTURE"
        gp.stroke_image = grain_image()
        gp.mix_stroke_factor = 1.0                   # the medium's colour, the grain's alpha
        gp.texture_scale = (1.0 / max(medium.grain, 0.1), 1.0)
    return mat


def _modifier(obj, role: str, kind: str):
    mod = obj.modifiers.new(PREFIX + role, kind)
    mod.tree_node_filter = LAYER_NAME                # the Sketch layer only
    return mod


def one_radius(obj) -> float:
    """The strokes' one width as a radius: as the builder recorded it, else (a result built
    before line weight) the middle of the first drawing's radii."""
    if "dynasketch_radius" in obj:
        return float(obj["dynasketch_radius"])
    for frame in obj.data.layers[LAYER_NAME].frames:
        radii = frame.drawing.attributes.get("radius")
        if radii is not None and len(radii.data):
            values = [0.0] * len(radii.data)
            radii.data.foreach_get("value", values)
            return sorted(values)[len(values) // 2]
    return 0.01


def _medium_modifiers(obj, medium: Medium) -> None:
    thickness = _modifier(obj, "Weight", "GREASE_PENCIL_THICKNESS")
    if medium.even:
        thickness.use_uniform_thickness = True
        thickness.thickness = one_radius(obj) * medium.thickness
    else:
        thickness.thickness_factor = medium.thickness
    if medium.taper:
        taper = _modifier(obj, "Taper", "GREASE_PENCIL_THICKNESS")
        taper.thickness_factor = 0.15                # the ends: 15 % of the weight
        taper.use_custom_curve = True
        curve = taper.custom_curve                   # the factor along the stroke: 1 at the ends
        points = curve.curves[0].points
        points[0].location, points[1].location = (0.0, 1.0), (1.0, 1.0)
        points.new(0.5, 0.0)
        curve.update()
    if medium.rough:
        rough = _modifier(obj, "Rough Edge", "GREASE_PENCIL_NOISE")
        rough.factor, rough.factor_thickness, rough.factor_strength = 0.0, medium.rough, 0.2
        rough.noise_scale, rough.use_random = 0.6, False


def _line_colour(obj, colour: str, custom) -> str:
    """Vertex colours (footage) or a Tint (a chosen colour); a note when there is no footage colour."""
    note = ""
    if colour == "custom":
        tint = _modifier(obj, "Colour", "GREASE_PENCIL_TINT")
        tint.color_mode, tint.tint_mode, tint.factor = "STROKE", "UNIFORM", 1.0
        tint.color = tuple(custom)[:3]
    for frame in obj.data.layers[LAYER_NAME].frames:
        drawing = frame.drawing
        source = drawing.attributes.get(FOOTAGE_COLOUR)
        old = drawing.attributes.get("vertex_color")
        if old is not None:
            drawing.attributes.remove(old)
        if colour != "footage" or not len(drawing.strokes):
            continue
        if source is None:
            note = ("this sketch has no footage colours (sketch it again with this engine); "
                    "lines keep the medium's colour")
            continue
        values = [0.0] * (4 * len(source.data))
        source.data.foreach_get("color", values)
        drawing.attributes.new("vertex_color", "FLOAT_COLOR", "POINT").data.foreach_set("color", values)
    return note


def _boil(obj) -> None:
    """A gentle, smooth wobble (the sketch plane is 2 units high), a new one every 2 frames."""
    boil = _modifier(obj, "Boil", "GREASE_PENCIL_NOISE")
    boil.factor, boil.factor_thickness, boil.factor_strength = 0.1, 0.1, 0.0
    boil.noise_scale, boil.use_random, boil.random_mode, boil.step = 0.1, True, "STEP", BOIL_STEP


def set_paper(scene: bpy.types.Scene, style: str) -> None:
    """The paper colour of ``style`` (Chalk's dark board, else white) on a Paper background."""
    colour = check_style(style).paper or PAPER
    if scene.world is None:
        scene.world = bpy.data.worlds.new("DynaSketch Paper")
    scene.world.color = colour
    if scene.world.node_tree:
        for node in scene.world.node_tree.nodes:
            if node.type == "BACKGROUND":
                node.inputs["Color"].default_value = (*colour, 1.0)


def on_paper(scene: bpy.types.Scene) -> bool:
    """Whether ``scene`` renders a Paper background (a world of one of the styles' paper colours)."""
    if scene.render.film_transparent or scene.world is None:
        return False
    papers = {PAPER} | {m.paper for m in MEDIA.values() if m.paper}
    return any(max(abs(a - b) for a, b in zip(scene.world.color, p)) < 1e-4 for p in papers)


def apply_style(obj, style: str, colour: str = "medium", custom=(0.8, 0.1, 0.1), boil: bool = False,
                scene: bpy.types.Scene | None = None) -> str:
    """Restyle the result ``obj``: its Sketch layer's material, the DynaSketch modifiers, the
    line colour, and (``scene`` on a Paper background) the paper. Returns a note for the user
    ("" when all went as asked); raises ``StyleError`` for an unknown style or an object that
    is no result."""
    medium = check_style(style)
    if colour not in {c for c, _, _ in COLOURS}:
        raise StyleError(f"unknown line colour {colour!r}: use one of {', '.join(c for c, _, _ in COLOURS)}")
    if not is_result(obj):
        name = "nothing" if obj is None else obj.name
        raise StyleError(f"{name} is not a DynaSketch result: select a sketch made by Sketch or Import DynaSketch")
    data = obj.data
    mat = style_material(style)
    slot = next((i for i, m in enumerate(data.materials) if m == mat), None)
    if slot is None:
        data.materials.append(mat)
        slot = len(data.materials) - 1
    for mod in [m for m in obj.modifiers if m.name.startswith(PREFIX)]:
        obj.modifiers.remove(mod)
    layer = data.layers[LAYER_NAME]
    layer.use_lights = False                         # line art is unlit: the medium's own colour
    for frame in layer.frames:
        drawing = frame.drawing
        if not len(drawing.strokes):
            continue
        mats = drawing.attributes.get("material_index") or drawing.attributes.new("material_index", "INT", "CURVE")
        mats.data.foreach_set("value", [slot] * len(drawing.strokes))
    _medium_modifiers(obj, medium)
    note = _line_colour(obj, colour, custom)
    if boil:
        _boil(obj)
    obj[STYLE_KEY] = style
    if scene is not None and on_paper(scene):
        set_paper(scene, style)
    obj.data.update_tag()
    return note
