"""The add-on in real Blender: Grease Pencil result, the real engine subprocess, errors, cancel,
render, and the extension zip."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from media import moving_disc, write_sketch, write_video


def sketch_objects(bpy):
    return [o for o in bpy.data.objects if o.type == "GREASEPENCIL"]


def keyframes(obj):
    layer = obj.data.layers["Sketch"]
    return sorted(layer.frames, key=lambda f: f.frame_number)


def check_against_sketch(obj, doc, frame_of):
    """Keyframes at the right scene frames, same strokes, Bezier, positions through placement."""
    from dynasketch_blender.grease_pencil_builder import STROKE_ID, Placement

    place = Placement(doc["width"], doc["height"])
    frames = keyframes(obj)
    assert [f.frame_number for f in frames] == [frame_of(f["index"]) for f in doc["frames"]]
    for kf, frame in zip(frames, doc["frames"]):
        drawing = kf.drawing
        strokes = frame["strokes"]
        assert len(drawing.strokes) == len(strokes)
        assert all(s.curve_type == 2 for s in drawing.strokes)                    # BEZIER
        ids = [0] * len(strokes)
        drawing.attributes[STROKE_ID].data.foreach_get("value", ids)
        assert ids == [s["id"] for s in strokes]
        for stroke, want in zip(drawing.strokes, strokes):
            pts = want["points"]
            got = [tuple(p.position) for p in stroke.points]
            assert np.allclose(got, [place.to_plane(*p) for p in pts[0::3]], atol=1e-5)
            assert np.allclose(tuple(stroke.points[0].handle_right.position), place.to_plane(*pts[1]), atol=1e-5)
            assert np.allclose(tuple(stroke.points[-1].handle_left.position), place.to_plane(*pts[-2]), atol=1e-5)
            assert stroke.points[0].radius == pytest.approx(place.radius(want["width"]), rel=1e-5)


def test_import_sketch_builds_animated_bezier_grease_pencil(blender, tmp_path):
    bpy = blender
    doc = write_sketch(tmp_path / "sketch.json")
    assert bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "sketch.json")) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    check_against_sketch(obj, doc, lambda i: 1 + i)
    mat = obj.data.materials[0]
    assert mat.grease_pencil.show_stroke and not mat.grease_pencil.show_fill
    assert tuple(mat.grease_pencil.color)[:3] == (0.0, 0.0, 0.0)
    scene = bpy.context.scene
    assert scene.camera.data.type == "ORTHO" and scene.camera.data.ortho_scale == pytest.approx(2.0 * 320 / 240)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (320, 240)
    assert (scene.frame_start, scene.frame_end) == (1, 5)


def test_reimport_replaces_the_previous_result(blender, tmp_path):
    bpy = blender
    write_sketch(tmp_path / "a.json", strokes=3, source="/clips/same.mp4")
    write_sketch(tmp_path / "b.json", strokes=5, source="/clips/same.mp4")
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "a.json"))
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "b.json"))
    (obj,) = sketch_objects(bpy)
    assert len(keyframes(obj)[0].drawing.strokes) == 5
    assert len([o for o in bpy.data.objects if o.type == "CAMERA"]) == 1


def test_footage_and_transparent_backgrounds(blender, tmp_path, disc_movie):
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    write_sketch(tmp_path / "s.json", width=128, height=96, source=disc_movie)
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"), background="footage")
    plane = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(plane) == 1 and plane[0].location.z == 0 and plane[0].data.vertices[0].co.z < 0
    image = plane[0].data.materials[0].node_tree.nodes["Image Texture"].image
    assert image.source == "MOVIE" and os.path.samefile(bpy.path.abspath(image.filepath), disc_movie)
    cam = bpy.context.scene.camera.data
    assert cam.background_images[0].clip == clip               # the clip behind the viewport
    (obj,) = sketch_objects(bpy)
    assert keyframes(obj)[0].frame_number == clip.frame_start   # lands where the clip plays
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "s.json"), background="transparent")
    assert bpy.context.scene.render.film_transparent
    assert not [o for o in bpy.data.objects if o.type == "MESH"]   # replaced with the old result


def test_bad_sketch_file_is_one_clear_error_and_builds_nothing(blender, tmp_path):
    bpy = blender
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(RuntimeError, match="not a DynaSketch sketch"):
        bpy.ops.dynasketch.import_sketch(filepath=str(bad))
    assert not sketch_objects(bpy) and not bpy.data.collections


@pytest.fixture
def disc_movie(tmp_path):
    frames, masks = moving_disc(t_len=10)
    return write_video(str(tmp_path / "disc.mp4"), frames)


def configure_fast(bpy, strokes=4):
    s = bpy.context.scene.dynasketch
    s.preset, s.strokes, s.seeds, s.mask_mode = "fast", strokes, 1, "none"
    return s


def test_sketch_movie_clip_with_the_real_engine(blender, disc_movie):
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    clip.frame_start = 10
    configure_fast(bpy)
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert [f["index"] for f in doc["frames"]] == list(range(10))
    check_against_sketch(obj, doc, lambda i: 10 + i)
    assert bpy.context.scene.frame_start == 10 and bpy.context.scene.frame_end == 19
    assert "Sketched 10 frames" in bpy.context.scene.dynasketch.status


def test_sketch_trimmed_movie_strip(blender, disc_movie):
    bpy = blender
    scene = bpy.context.scene
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_movie("disc", disc_movie, channel=1, frame_start=5)
    strip.frame_offset_start, strip.frame_offset_end = 2, 3          # shows source frames 2..6
    configure_fast(bpy, strokes=3)
    assert bpy.ops.dynasketch.sketch(strip=strip.name) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert [f["index"] for f in doc["frames"]] == [2, 3, 4, 5, 6]
    check_against_sketch(obj, doc, lambda i: 5 + i)                 # frames 7..11 in the scene


def test_engine_errors_leave_the_scene_as_it_was(blender, disc_movie, tmp_path, monkeypatch):
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    settings = configure_fast(bpy)
    settings.mask_mode, settings.mask_path = "file", str(tmp_path / "missing-mask.mp4")
    before = sorted(o.name for o in bpy.data.objects)
    with pytest.raises(RuntimeError, match="DynaSketch failed: --mask"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    assert "not found" in settings.status and sorted(o.name for o in bpy.data.objects) == before
    monkeypatch.setenv("DYNASKETCH_PYTHON", str(tmp_path / "no-such-python"))
    settings.mask_mode = "none"
    with pytest.raises(RuntimeError, match="engine interpreter not found"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    assert sorted(o.name for o in bpy.data.objects) == before and not bpy.data.collections


def test_engine_crash_half_way_builds_nothing(blender, disc_movie, tmp_path, monkeypatch):
    bpy = blender
    crash = tmp_path / "crash.py"
    crash.write_text("import json, sys\nprint(json.dumps({'event': 'progress', 'stage': 'optimise', "
                     "'done': 3, 'total': 10, 'message': 'frame 3'}), flush=True)\n"
                     "sys.stderr.write('Segmentation fault\\n'); sys.exit(139)\n")
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} {crash}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("DYNASKETCH_PYTHON", str(fake))
    clip = bpy.data.movieclips.load(disc_movie)
    configure_fast(bpy)
    with pytest.raises(RuntimeError, match="DynaSketch failed: Segmentation fault"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    assert not sketch_objects(bpy) and not bpy.data.collections


def test_cancel_stops_the_engine_within_a_second(blender, tmp_path):
    bpy = blender
    from dynasketch_blender import sketch_job, source
    from dynasketch_blender.engine_process import find_engine

    frames, _ = moving_disc(t_len=40)
    movie = write_video(str(tmp_path / "long.mp4"), frames)
    clip = bpy.data.movieclips.load(movie)
    job = sketch_job.SketchJob(find_engine(), source.from_clip(clip),
                               {"strokes": 8, "width": 1.5, "preset": "default", "frames": (0, 40, 1),
                                "mask": "none", "seeds": 3, "device": "cpu"})
    job.start()
    deadline = time.monotonic() + 120
    while job.step() == sketch_job.RUNNING and job.progress == 0 and "initialise" not in job.message:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    asked = time.monotonic()
    job.cancel()
    assert time.monotonic() - asked < 1.5
    assert job.state == sketch_job.CANCELLED and job.process.returncode() is not None
    assert not sketch_objects(bpy)


RENDER = r"""
import sys, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
sys.path.insert(0, {root!r})
import dynasketch_blender
dynasketch_blender.register()
bpy.ops.dynasketch.import_sketch(filepath={sketch!r}, background="paper")
scene = bpy.context.scene
scene.render.engine = "BLENDER_WORKBENCH"
scene.frame_set(3)
scene.render.filepath = {png!r}
bpy.ops.render.render(write_still=True)
"""


def test_workbench_render_shows_ink_where_the_strokes_are(tmp_path):
    pytest.importorskip("bpy")
    from PIL import Image

    doc = write_sketch(tmp_path / "sketch.json", frames=(0, 2, 4), width=320, height=240)
    png = tmp_path / "frame.png"
    script = RENDER.format(root=ROOT, sketch=str(tmp_path / "sketch.json"), png=str(png))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    image = np.asarray(Image.open(png).convert("L")).astype(float)
    assert image.shape == (240, 320)
    # frame 3 shows the keyframe of source frame 2: ink at the strokes' end points
    for stroke in doc["frames"][1]["strokes"]:
        for x, y in (stroke["points"][0], stroke["points"][-1]):
            patch = image[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4]
            assert patch.min() < 100, (x, y)
    assert np.median(image) > 200                                     # paper is white
    assert image[5:25, 280:315].min() > 200                           # no ink far from strokes


INSTALL = r"""
import sys, bpy
bpy.ops.extensions.package_install_files(filepath={zip!r}, repo="user_default", enable_on_install=True)
import addon_utils
enabled = [m for m in bpy.context.preferences.addons.keys() if m.endswith("dynasketch")]
assert enabled, list(bpy.context.preferences.addons.keys())
assert hasattr(bpy.ops.dynasketch, "sketch") and hasattr(bpy.types.Scene, "dynasketch")
bpy.ops.dynasketch.import_sketch(filepath={sketch!r})
assert [o for o in bpy.data.objects if o.type == "GREASEPENCIL"]
bpy.ops.dynasketch.check_engine()
report = bpy.context.preferences.addons[enabled[0]].preferences.doctor_report
assert "lucas-kanade" in report and "line-loss" in report, report
print("INSTALLED", enabled[0])
"""


def test_built_zip_installs_as_an_extension(tmp_path):
    pytest.importorskip("bpy")
    build = subprocess.run([sys.executable, os.path.join(ROOT, "build_addon.py"), "--out", str(tmp_path)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert "validated" in build.stdout
    zip_path = build.stdout.split()[0]
    write_sketch(tmp_path / "sketch.json")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender-user"),
           "DYNASKETCH_PYTHON": sys.executable}
    done = subprocess.run([sys.executable, "-c", INSTALL.format(zip=zip_path, sketch=str(tmp_path / "sketch.json"))],
                          capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0 and "INSTALLED bl_ext.user_default.dynasketch" in done.stdout, done.stderr[-3000:]
