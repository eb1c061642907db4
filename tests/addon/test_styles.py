"""Styles (dynasketch_blender/styles.py): line weight reaches Grease Pencil, each style is
Blender's own materials and modifiers, Apply Style restyles a result, bad input is refused in
one line, and real Workbench and EEVEE renders show what a person would see."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import keyframes, sketch_objects
from media import write_sketch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STYLES = ("ink", "pencil", "brush", "marker", "chalk")
W, H = 320, 240
TAPERED = [1.0, 7.0, 10.0, 7.0, 1.0]          # widths along a stroke, source px


def weighted_sketch(path, colour=(0.78, 0.35, 0.12), frames=range(4)):
    """Two long horizontal strokes (each a cubic cut in 4, as the engine writes them) with
    tapered widths and a colour, on every frame."""
    strokes = []
    for k, y in enumerate((80, 170)):
        xs = np.linspace(40, 280, 13)
        strokes.append({"id": k, "points": [[round(float(x), 3), float(y)] for x in xs], "width": 6.0,
                        "opacity": 1.0, "widths": TAPERED, "colour": list(colour)})
    doc = {"format": "dynasketch.sketch", "version": 1, "width": W, "height": H, "fps": 24.0,
           "source": {"path": "", "frames": [frames[0], frames[-1] + 1, 1]}, "settings": {}, "complete": True,
           "frames": [{"index": f, "strokes": strokes} for f in frames]}
    with open(path, "w") as fh:
        json.dump(doc, fh)
    return doc


def radii(stroke):
    return [p.radius for p in stroke.points]


def test_an_older_sketch_without_widths_imports_with_even_widths(blender, tmp_path):
    bpy = blender
    from dynasketch_blender.grease_pencil_builder import Placement

    write_sketch(tmp_path / "old.json")
    assert bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "old.json")) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    for stroke in keyframes(obj)[0].drawing.strokes:
        assert radii(stroke) == pytest.approx([Placement(W, H).radius(3.0)] * 2)


def test_point_radius_follows_the_widths(blender, tmp_path):
    bpy = blender
    from dynasketch_blender.grease_pencil_builder import Placement

    weighted_sketch(tmp_path / "s.json")
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"))
    (obj,) = sketch_objects(bpy)
    place = Placement(W, H)
    for stroke in keyframes(obj)[0].drawing.strokes:
        assert radii(stroke) == pytest.approx([place.radius(w) for w in TAPERED], rel=1e-5)


def test_each_style_is_blender_materials_and_modifiers_the_artist_can_change(blender, tmp_path):
    bpy = blender
    from dynasketch_blender import styles

    weighted_sketch(tmp_path / "s.json")
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"))
    (obj,) = sketch_objects(bpy)
    assert obj["dynasketch_style"] == "ink"                              # the default
    looks = {}
    for style in STYLES:
        styles.apply_style(obj, style)
        drawing = keyframes(obj)[0].drawing
        index = [0] * len(drawing.strokes)
        drawing.attributes["material_index"].data.foreach_get("value", index)
        (material,) = {obj.data.materials[i] for i in index}
        assert material.name == f"DynaSketch {styles.MEDIA[style].label}" and material.grease_pencil
        mods = [m for m in obj.modifiers if m.name.startswith("DynaSketch ")]
        assert mods and all(m.tree_node_filter == "Sketch" for m in mods)   # the Sketch layer only
        assert not obj.data.layers["Sketch"].use_lights
        looks[style] = (tuple(round(c, 3) for c in material.grease_pencil.color), material.grease_pencil.stroke_style,
                        tuple(sorted((m.type, getattr(m, "thickness_factor", 0), getattr(m, "use_uniform_thickness", 0))
                                     for m in mods)))
    assert len(set(looks.values())) == len(STYLES)                        # no two alike
    assert looks["pencil"][1] == looks["chalk"][1] == "TEXTURE"           # grain
    # an artist's edit to a style's material stays when the style is applied again
    bpy.data.materials["DynaSketch Pencil"].grease_pencil.color = (0.2, 0.1, 0.0, 1.0)
    styles.apply_style(obj, "pencil")
    assert tuple(bpy.data.materials["DynaSketch Pencil"].grease_pencil.color)[:3] == pytest.approx((0.2, 0.1, 0.0))


def test_boil_is_off_by_default_and_a_noise_stepped_on_twos(blender, tmp_path):
    bpy = blender
    from dynasketch_blender import styles

    weighted_sketch(tmp_path / "s.json", frames=range(6))
    assert bpy.context.scene.dynasketch.boil is False
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"))
    (obj,) = sketch_objects(bpy)
    assert "DynaSketch Boil" not in obj.modifiers
    styles.apply_style(obj, "ink", boil=True)
    boil = obj.modifiers["DynaSketch Boil"]
    assert boil.type == "GREASE_PENCIL_NOISE" and boil.step == 2 and boil.use_random and boil.factor > 0

    def evaluated(frame):                                                # the drawn positions
        bpy.context.scene.frame_set(frame)
        drawing = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.layers["Sketch"] \
            .current_frame().drawing
        pos = [0.0] * (3 * len(drawing.attributes["position"].data))
        drawing.attributes["position"].data.foreach_get("vector", pos)
        return np.array(pos)

    poses = [evaluated(f) for f in range(1, 7)]                          # the same strokes every frame
    same = [np.allclose(a, b) for a, b in zip(poses, poses[1:])]          # frame f and f + 1 drawn alike
    assert same in ([False, True, False, True, False], [True, False, True, False, True])   # on 2s


def test_line_colour_from_the_footage_or_chosen(blender, tmp_path):
    bpy = blender
    from dynasketch_blender import styles

    weighted_sketch(tmp_path / "s.json", colour=(0.5, 0.25, 1.0))
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"), line_colour="footage")
    (obj,) = sketch_objects(bpy)
    drawing = keyframes(obj)[0].drawing
    colours = [0.0] * (4 * len(drawing.attributes["vertex_color"].data))
    drawing.attributes["vertex_color"].data.foreach_get("color", colours)
    srgb = lambda c: 1.055 * c ** (1 / 2.4) - 0.055                       # noqa: E731  (linear -> sRGB)
    assert [srgb(c) for c in colours[:3]] == pytest.approx([0.5, 0.25, 1.0], abs=1e-3) and colours[3] == 1.0
    styles.apply_style(obj, "ink", colour="custom", custom=(0.0, 0.5, 0.0))
    assert "vertex_color" not in keyframes(obj)[0].drawing.attributes
    assert tuple(obj.modifiers["DynaSketch Colour"].color) == pytest.approx((0.0, 0.5, 0.0))
    # an older sketch has no footage colour: said so, and the lines keep the medium's
    write_sketch(tmp_path / "old.json")
    assert bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "old.json"), line_colour="footage") == {"FINISHED"}
    assert "no footage colours" in bpy.context.scene.dynasketch.status


def test_apply_style_restyles_a_result_and_keeps_the_artists_own_work(blender, tmp_path):
    bpy = blender
    weighted_sketch(tmp_path / "s.json")
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"))
    (obj,) = sketch_objects(bpy)
    own = obj.modifiers.new("My Offset", "GREASE_PENCIL_OFFSET")
    notes = obj.data.layers.new("Notes")
    settings = bpy.context.scene.dynasketch
    settings.style, settings.boil = "chalk", True
    assert bpy.ops.dynasketch.apply_style(object=obj.name) == {"FINISHED"}
    assert obj["dynasketch_style"] == "chalk" and "DynaSketch Boil" in obj.modifiers
    assert obj.modifiers.get("My Offset") == own and obj.data.layers.get("Notes") == notes
    assert tuple(bpy.context.scene.world.color) == pytest.approx((0.012, 0.02, 0.016))   # dark paper
    assert settings.status.startswith(f"{obj.name} restyled: Chalk") and not settings.failed
    settings.style, settings.boil = "marker", False
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.dynasketch.apply_style() == {"FINISHED"}                      # the active object
    assert "DynaSketch Boil" not in obj.modifiers
    assert tuple(bpy.context.scene.world.color) == pytest.approx((1.0, 1.0, 1.0))       # white again


def test_bad_input_is_refused_in_one_line(blender, tmp_path):
    bpy = blender
    from dynasketch_blender import styles

    weighted_sketch(tmp_path / "s.json")
    with pytest.raises(TypeError) as refused:                            # Import's enum refuses it
        bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"), style="watercolour")
    assert "watercolour" in str(refused.value) and "\n" not in str(refused.value).strip()
    assert sketch_objects(bpy) == []
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"))
    (obj,) = sketch_objects(bpy)
    with pytest.raises(styles.StyleError) as unknown:
        styles.apply_style(obj, "watercolour")
    assert str(unknown.value) == "unknown style 'watercolour': use one of ink, pencil, brush, marker, chalk"
    # Apply Style on something that is not a result says so, and changes nothing
    cube = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    bpy.context.scene.collection.objects.link(cube)
    plain = bpy.data.objects.new("Doodles", bpy.data.grease_pencils.new("Doodles"))
    bpy.context.scene.collection.objects.link(plain)
    for other in (cube, plain):
        said = f"DynaSketch: {other.name} is not a DynaSketch result: select a sketch made by " \
               "Sketch or Import DynaSketch"
        with pytest.raises(RuntimeError, match=said):                    # reported as an error
            bpy.ops.dynasketch.apply_style(object=other.name)
        assert bpy.context.scene.dynasketch.status == said and bpy.context.scene.dynasketch.failed
        assert not [m for m in other.modifiers if m.name.startswith("DynaSketch")]
    bpy.context.view_layer.objects.active = None
    with pytest.raises(RuntimeError, match="nothing is not a DynaSketch result"):
        bpy.ops.dynasketch.apply_style()


RENDER = r"""
import json, os, sys, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
sys.path.insert(0, {root!r})
import dynasketch_blender
dynasketch_blender.register()
bpy.ops.dynasketch.import_sketch(filepath={sketch!r}, background="paper", style={style!r},
                                 line_colour={colour!r})
scene = bpy.context.scene
scene.frame_set(2)
for engine in ("BLENDER_WORKBENCH", "BLENDER_EEVEE"):
    scene.render.engine = engine
    scene.render.filepath = os.path.join({out!r}, f"{{engine}}.png")
    bpy.ops.render.render(write_still=True)
os._exit(0)     # bpy can hang in its EGL teardown after the image is written
"""


def render_style(tmp_path, style, colour="medium"):
    """A style rendered with Workbench and EEVEE, in a Blender of its own (a background Blender
    that has rendered once does not take a changed stroke material): {engine: RGB (H, W, 3)}."""
    from PIL import Image

    out = tmp_path / f"{style}-{colour}"
    out.mkdir()
    script = RENDER.format(root=ROOT, sketch=str(tmp_path / "s.json"), style=style, colour=colour, out=str(out))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    images = {e: out / f"{e}.png" for e in ("BLENDER_WORKBENCH", "BLENDER_EEVEE")}
    if done.returncode != 0 and "EGL" in done.stderr + done.stdout and not all(p.exists() for p in images.values()):
        pytest.fail("Blender could not render headless: install libegl1 libegl-mesa0 libgl1-mesa-dri\n"
                    + done.stderr[-1500:])
    assert all(p.exists() for p in images.values()), done.stderr[-2000:]
    return {e: np.asarray(Image.open(p).convert("RGB")).astype(float) for e, p in images.items()}


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    pytest.importorskip("bpy")
    tmp_path = tmp_path_factory.mktemp("styles")
    weighted_sketch(tmp_path / "s.json")
    return {style: render_style(tmp_path, style) for style in STYLES}


def ink_of(image, paper):
    """How far each pixel is from the paper, 0-1 (H, W)."""
    return np.abs(image - paper).max(-1) / 255.0


@pytest.mark.parametrize("engine", ["BLENDER_WORKBENCH", "BLENDER_EEVEE"])
def test_renders_show_each_style_with_thick_middles_and_thin_ends(renders, engine):
    for style in STYLES:
        image = renders[style][engine]
        paper = np.median(image.reshape(-1, 3), axis=0)
        if style == "chalk":
            assert paper.max() < 60                                          # dark paper
        else:
            assert paper.min() > 240
        ink = ink_of(image, paper)
        row = ink[70:91]                                                     # around the stroke at y = 80
        assert row.max() > 0.3, style                     # ink present on the stroke (pencil is lighter)
        assert ink[:50].max() < 0.1 and ink[110:150].max() < 0.1, style      # and nowhere else
        thickness = (row > 0.5 * row.max()).sum(0)                           # ink rows in each column
        middle, ends = thickness[150:170].mean(), max(thickness[50:56].mean(), thickness[264:270].mean())
        if style == "marker":                                                # even width, as before
            assert abs(middle - ends) <= 1.5, (style, middle, ends)
        else:
            assert middle > ends + 2, (style, middle, ends)


def test_the_styles_differ_from_each_other(renders):
    pictures = {s: renders[s]["BLENDER_EEVEE"] for s in STYLES}
    for i, a in enumerate(STYLES):
        for b in STYLES[i + 1:]:
            assert np.abs(pictures[a] - pictures[b]).mean() > 0.3, (a, b)  # levels per pixel, whole frame


def test_footage_colour_renders_the_colour_under_the_stroke(tmp_path):
    """A frame with an orange band; the engine's ink colour of a stroke along it (engine/ink),
    imported with Line Colour: Footage, renders within a few levels of the band."""
    pytest.importorskip("bpy")
    from engine.ink import split
    from engine.ink.colour import StrokeColours

    footage = np.full((H, W, 3), 235, np.uint8)
    footage[60:100] = (201, 92, 38)
    footage[150:190] = (40, 110, 170)
    strokes = np.array([[[40, y], [120, y], [200, y], [280, y]] for y in (80, 170)], np.float64)
    colours = StrokeColours().colour(split(strokes), footage, None)
    doc = weighted_sketch(tmp_path / "s.json")
    for frame in doc["frames"]:
        for stroke, colour in zip(frame["strokes"], colours):
            stroke["colour"] = [round(float(c), 4) for c in colour]
    with open(tmp_path / "s.json", "w") as fh:
        json.dump(doc, fh)
    for engine, image in render_style(tmp_path, "ink", "footage").items():
        for y in (80, 170):
            drawn = np.median(image[y - 1:y + 2, 140:180].reshape(-1, 3), axis=0)
            assert np.abs(drawn - footage[y, 160]).max() <= 4, (engine, y, drawn, footage[y, 160])
