"""Import of a hand-made sketch.json: the Grease Pencil v3 result, its placement, camera,
backgrounds, replacement, a target object, undo, and bad files."""
import json
import os

import pytest
from helpers import check_against_sketch, keyframes, sketch_objects
from dynasketch_blender.grease_pencil_builder import grease_pencil_datablocks
from media import write_sketch


def test_import_builds_animated_bezier_grease_pencil(blender, tmp_path):
    bpy = blender
    doc = write_sketch(tmp_path / "sketch.json")
    assert bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "sketch.json")) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    check_against_sketch(obj, doc, lambda i: 1 + i)
    assert [layer.name for layer in obj.data.layers] == ["Sketch"]
    mat = obj.data.materials[0]
    assert mat.grease_pencil.show_stroke and not mat.grease_pencil.show_fill
    assert tuple(mat.grease_pencil.color) == (0.0, 0.0, 0.0, 1.0)
    scene = bpy.context.scene
    cam = scene.camera
    assert cam.data.type == "ORTHO" and cam.data.ortho_scale == pytest.approx(2.0 * 320 / 240)
    assert tuple(cam.location) == (0.0, 0.0, 10.0) and tuple(cam.rotation_euler) == (0.0, 0.0, 0.0)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (320, 240)
    assert (scene.frame_start, scene.frame_end) == (1, 5)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(24.0)
    assert obj.users_collection[0].name == "DynaSketch sketch" and not bpy.data.collections[0].hide_render


def test_placement_keeps_the_clip_aspect_and_flips_y(blender):
    from dynasketch_blender.grease_pencil_builder import Placement, bezier_handles

    place = Placement(1920, 1080)
    assert place.plane_height == 2.0 and place.plane_width == pytest.approx(2.0 * 1920 / 1080)
    assert place.to_plane(0, 0) == pytest.approx((-place.plane_width / 2, 1.0, 0.0))
    assert place.to_plane(1920, 1080) == pytest.approx((place.plane_width / 2, -1.0, 0.0))
    knots, left, right = bezier_handles([[0, 0], [1, 0], [2, 1], [3, 1], [4, 1], [5, 2], [6, 2]])
    assert knots == [[0, 0], [3, 1], [6, 2]]
    assert left[1:] == [[2, 1], [5, 2]] and right[:2] == [[1, 0], [4, 1]]
    assert left[0] == [-1, 0] and right[-1] == [7, 2]         # outer handles mirror the inner ones


def test_multi_segment_strokes(blender, tmp_path):
    bpy = blender
    doc = write_sketch(tmp_path / "s.json")
    for frame in doc["frames"]:
        for s in frame["strokes"]:
            x, y = s["points"][-1]
            s["points"] += [[x + 10, y + 5], [x + 20, y - 5], [x + 30, y]]
            s["opacity"] = 0.5
    (tmp_path / "s.json").write_text(json.dumps(doc))
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"))
    check_against_sketch(sketch_objects(bpy)[0], doc, lambda i: 1 + i)


def test_keyframes_land_where_a_loaded_clip_plays(blender, tmp_path, disc_movie):
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    clip.frame_start = 20
    doc = write_sketch(tmp_path / "s.json", width=128, height=96, source="/elsewhere/disc.mp4")
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"))   # made on another machine
    (obj,) = sketch_objects(bpy)
    check_against_sketch(obj, doc, lambda i: 20 + i)
    assert bpy.context.scene.camera.data.background_images[0].clip == clip


def test_reimport_replaces_the_previous_result_and_keeps_names(blender, tmp_path):
    bpy = blender
    write_sketch(tmp_path / "a.json", strokes=3, source="/clips/same.mp4")
    write_sketch(tmp_path / "b.json", strokes=5, source="/clips/same.mp4")
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "a.json"))
    names = sorted(o.name for o in bpy.data.objects)
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "b.json"))
    (obj,) = sketch_objects(bpy)
    assert len(keyframes(obj)[0].drawing.strokes) == 5
    assert sorted(o.name for o in bpy.data.objects) == names            # no ".001" copies
    assert len(bpy.data.collections) == 1 and len(bpy.data.cameras) == 1
    assert len(grease_pencil_datablocks()) == 1


def test_failed_rebuild_keeps_the_previous_result(blender, tmp_path, monkeypatch):
    bpy = blender
    from dynasketch_blender import grease_pencil_builder

    write_sketch(tmp_path / "a.json", strokes=3, source="/clips/same.mp4")
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "a.json"))
    before = sorted(o.name for o in bpy.data.objects), len(grease_pencil_datablocks()), len(bpy.data.cameras)
    calls = []

    def fail_on_the_third_frame(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    real = grease_pencil_builder.fill_drawing
    monkeypatch.setattr(grease_pencil_builder, "fill_drawing", fail_on_the_third_frame)
    with pytest.raises(RuntimeError, match="could not build the sketch: disk full"):
        bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "a.json"), background="footage")
    after = sorted(o.name for o in bpy.data.objects), len(grease_pencil_datablocks()), len(bpy.data.cameras)
    assert after == before
    assert len(keyframes(sketch_objects(bpy)[0])[0].drawing.strokes) == 3
    assert "disk full" in bpy.context.scene.dynasketch.status and bpy.context.scene.dynasketch.failed


def test_footage_and_transparent_backgrounds(blender, tmp_path, disc_movie):
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    write_sketch(tmp_path / "s.json", width=128, height=96, source=disc_movie)
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"), background="footage")
    (plane,) = [o for o in bpy.data.objects if o.type == "MESH"]
    assert plane.location.z == 0 and plane.data.vertices[0].co.z < 0
    tex = plane.data.materials[0].node_tree.nodes["Image Texture"]
    assert tex.image.source == "MOVIE" and os.path.samefile(bpy.path.abspath(tex.image.filepath), disc_movie)
    assert tex.image_user.frame_start == clip.frame_start
    assert bpy.context.scene.camera.data.background_images[0].clip == clip
    (obj,) = sketch_objects(bpy)
    assert keyframes(obj)[0].frame_number == clip.frame_start
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"), background="transparent")
    assert bpy.context.scene.render.film_transparent
    assert not [o for o in bpy.data.objects if o.type == "MESH"]     # replaced with the old result
    assert not [m for m in bpy.data.materials if m.name.startswith("DynaSketch Footage")]


def test_a_sketch_of_an_image_sequence_lands_where_its_clip_plays(blender, tmp_path):
    """sketch.json names a sequence by its pattern: the loaded clip of that sequence places
    the keyframes and is the footage."""
    bpy = blender
    from PIL import Image

    for n in range(5, 12):
        Image.new("RGB", (320, 240), (20 * n, 0, 0)).save(tmp_path / f"plate_{n:03d}.png")
    other = bpy.data.movieclips.load(str(tmp_path / "plate_005.png"))          # the same images, another clip
    other.frame_start = 50
    clip = bpy.data.movieclips.load(str(tmp_path / "plate_007.png"), check_existing=False)
    clip.frame_start = 30
    write_sketch(tmp_path / "s.json", frames=(0, 2, 4), source=str(tmp_path / "plate_%03d.png"))
    assert bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"), background="footage") == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    assert [k.frame_number for k in keyframes(obj)] == [50, 52, 54]
    (plane,) = [o for o in bpy.data.objects if o.type == "MESH"]
    texture = plane.data.materials[0].node_tree.nodes["Image Texture"]
    assert texture.image.source == "SEQUENCE" and texture.image_user.frame_offset == 4
    assert bpy.context.scene.camera.data.background_images[0].clip == other
    doc = write_sketch(tmp_path / "s.json", frames=(0, 2, 4), source=str(tmp_path / "plate_%03d.png"))
    doc["source"]["start_number"] = 7                                 # a sketch of the second clip
    (tmp_path / "s.json").write_text(json.dumps(doc))
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"), background="footage")
    (obj,) = [o for o in sketch_objects(bpy) if o.name.startswith(clip.name)]
    assert [k.frame_number for k in keyframes(obj)] == [30, 32, 34]


def test_target_object_gets_its_sketch_layer_replaced(blender, tmp_path):
    bpy = blender
    from dynasketch_blender import sketch_job
    from dynasketch_blender.sketch_file import load_sketch
    from dynasketch_blender.source import Source

    data = grease_pencil_datablocks().new("Mine")
    data.layers.new("Lines I drew")
    old = data.layers.new("Sketch")
    old.frames.new(1)
    target = bpy.data.objects.new("Mine", data)
    bpy.context.scene.collection.objects.link(target)
    doc = write_sketch(tmp_path / "s.json")
    src = Source("file:x", "x", "", bpy.context.scene.name, 1, (0, 5))
    obj = sketch_job.build_result(bpy.context.scene, load_sketch(str(tmp_path / "s.json")), src, target=target)
    assert obj == target and sketch_objects(bpy) == [target]
    assert [layer.name for layer in data.layers] == ["Lines I drew", "Sketch"]
    check_against_sketch(target, doc, lambda i: 1 + i)


def test_sketching_again_into_the_last_result_keeps_it_and_what_was_drawn_on_it(blender, tmp_path):
    """An animator draws on the result, then sketches again with it as the Target: the object,
    with the layers drawn on it, stays in the scene; only its "Sketch" layer is new."""
    bpy = blender
    from dynasketch_blender import sketch_job
    from dynasketch_blender.sketch_file import load_sketch
    from dynasketch_blender.source import Source

    src = Source("file:x", "x", "", bpy.context.scene.name, 1, (0, 5))
    write_sketch(tmp_path / "s.json")
    first = sketch_job.build_result(bpy.context.scene, load_sketch(str(tmp_path / "s.json")), src)
    first.data.layers.new("Lines I drew").frames.new(1)
    doc = write_sketch(tmp_path / "s.json", frames=(0, 1, 2, 3))
    obj = sketch_job.build_result(bpy.context.scene, load_sketch(str(tmp_path / "s.json")), src, target=first)
    assert obj == first and sketch_objects(bpy) == [first]
    assert [layer.name for layer in obj.data.layers] == ["Lines I drew", "Sketch"]
    assert obj.name in bpy.context.scene.objects and obj.users_collection[0].name == "DynaSketch x"
    check_against_sketch(obj, doc, lambda i: 1 + i)
    assert [o.name for o in bpy.data.objects if o.type == "CAMERA"] == ["DynaSketch Camera x"]


def test_undo_returns_to_the_scene_before_the_sketch(blender, tmp_path):
    bpy = blender
    write_sketch(tmp_path / "s.json")
    # In background mode Blender pushes no undo step for an operator (there is no window), so
    # the test pushes the steps that the UNDO flag makes Blender push in the UI.
    assert "UNDO" in bpy.types.DYNASKETCH_OT_import_sketch.bl_options
    assert "UNDO" in bpy.types.DYNASKETCH_OT_sketch.bl_options
    bpy.ops.ed.undo_push(message="before")
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"))
    bpy.ops.ed.undo_push(message="Import DynaSketch")
    assert sketch_objects(bpy)
    bpy.ops.ed.undo()
    assert not sketch_objects(bpy) and not bpy.data.collections
    assert bpy.context.scene.camera is None


def test_undo_removes_a_strips_sketch_scene_and_its_scene_strip(blender, tmp_path, disc_movie):
    bpy = blender
    from dynasketch_blender import sketch_job, source
    from dynasketch_blender.sketch_file import load_sketch

    edit = bpy.context.scene
    strip = edit.sequence_editor_create().strips.new_movie("take", disc_movie, channel=1, frame_start=5)
    write_sketch(tmp_path / "s.json", frames=tuple(range(10)))
    bpy.ops.ed.undo_push(message="before")
    sketch_job.build_result(edit, load_sketch(str(tmp_path / "s.json")), source.from_strip(strip, edit))
    bpy.ops.ed.undo_push(message="Sketch")
    assert len(bpy.data.scenes) == 2 and [s.type for s in edit.sequence_editor.strips] == ["MOVIE", "SCENE"]
    bpy.ops.ed.undo()
    edit = bpy.context.scene
    assert len(bpy.data.scenes) == 1 and [s.type for s in edit.sequence_editor.strips] == ["MOVIE"]
    assert not sketch_objects(bpy) and not bpy.data.collections


def test_incomplete_sketch_imports_with_a_warning(blender, tmp_path):
    bpy = blender
    doc = write_sketch(tmp_path / "s.json")
    doc["complete"] = False
    (tmp_path / "s.json").write_text(json.dumps(doc))
    assert bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json")) == {"FINISHED"}
    assert "incomplete" in bpy.context.scene.dynasketch.status


@pytest.mark.parametrize("text, message", [
    ('{"format": "something else"}', "not a DynaSketch sketch"),
    ('{"format": "dynasketch.sketch", "version": 99}', "version 99"),
    ('{"format": "dynasketch.sketch", "version": 1, "width": 10, "height": 10, "frames": [{"index": 0, '
     '"strokes": [{"id": 0, "points": [[0, 0], [1, 1]], "width": 1}]}]}', "3\\*S\\+1 points"),
    ('{"format": "dynasketch.sketch", "version": 1, "width": 10, "height": 10, "frames": [{"index": 0, '
     '"strokes": [{"id": 0, "points": [[0,0],[1,1],[2,2],[3,3]], "width": 1}]}, {"index": 1, "strokes": []}]}',
     "not have the same strokes"),
    ('{"format": "dynasketch.sketch", ', "not a readable sketch.json"),
])
def test_bad_sketch_file_is_one_clear_error_and_builds_nothing(blender, tmp_path, text, message):
    bpy = blender
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.dynasketch.import_sketch(filepath=str(bad))
    assert not sketch_objects(bpy) and not bpy.data.collections and not bpy.data.cameras
    assert bpy.context.scene.dynasketch.failed
