"""The engine's frame k is the picture Blender shows at the clip's frame k, for the clips where
counting decoded frames is not enough: variable frame rates (phones), dropped frames, a late
start. Blender's pictures come from Sequencer renders in a subprocess (without EGL Blender
aborts the whole process), the engine's from its decoder in the engine's interpreter."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ENGINE_PYTHON
from media import moving_disc, numbered_frames, write_video

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BLENDER_SHOWS = r"""
import json, sys, bpy
sys.path.insert(0, {tests!r})
from media import rendered_number
shown = {{}}
for path in {paths!r}:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.view_settings.view_transform = "Standard"
    clip = bpy.data.movieclips.load(path)
    editor = scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences     # 5.0 / 4.5
    strip = strips.new_movie("footage", path, 1, 1)
    scene.render.resolution_x, scene.render.resolution_y = clip.size
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = path + ".png"
    numbers = [rendered_number(bpy, scene, frame) for frame in range(1, clip.frame_duration + 1)]
    shown[path] = {{"count": clip.frame_duration, "strip": strip.frame_final_duration, "frames": numbers}}
print("SHOWN", json.dumps(shown))
import os; os._exit(0)     # bpy 4.5 can hang in its EGL teardown
"""

ENGINE_SHOWS = r"""
import json, sys
sys.path.insert(0, {tests!r})
from media import frame_number
from engine.video import FrameRange, open_video
shown = {{}}
for path in {paths!r}:
    source = open_video(path)
    count = source.info.frame_count
    shown[path] = {{"count": count, "strip": count,
                   "frames": [frame_number(rgb) for _, rgb, _ in source.frames(FrameRange(0, count))]}}
print("SHOWN", json.dumps(shown))
"""


def shown_by(python, script, paths, **fields):
    """Run ``script`` (formatted with ``tests``, ``root``, ``paths`` and ``fields``) in ``python``;
    what it printed after "SHOWN "."""
    script = script.format(tests=os.path.join(ROOT, "tests"), root=ROOT, paths=paths, **fields)
    done = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    line = next((l for l in done.stdout.splitlines() if l.startswith("SHOWN ")), None)
    assert line, (done.stdout + done.stderr)[-3000:]
    return json.loads(line[len("SHOWN "):])


def test_the_engine_sketches_each_frame_blender_shows(tmp_path):
    pytest.importorskip("bpy")
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, 30)
    timings = {
        "jittered.mp4": [(i + jitter[i]) / 30 for i in range(30)],           # a phone's VFR clock
        "dropped.mp4": [i / 30 for i in range(10)] + [(i + 3) / 30 for i in range(10, 30)],
        "burst.mp4": [i / 30 for i in range(10)] + [1 / 3 + (i - 10) / 60 for i in range(10, 30)],
        "late-start.mp4": [0.5 + i / 30 for i in range(30)],
    }
    paths = [write_video(str(tmp_path / name), numbered_frames(len(times)), fps=30, times=times)
             for name, times in timings.items()]
    paths += [write_video(str(tmp_path / f"steady.{ext}"), numbered_frames(30)) for ext in ("mkv", "avi")]
    blender = shown_by(sys.executable, BLENDER_SHOWS, paths)
    engine = shown_by(ENGINE_PYTHON, ENGINE_SHOWS, paths)
    for path in paths:
        name = os.path.basename(path)
        assert blender[path]["count"] == blender[path]["strip"]
        assert engine[path] == blender[path], name
    # the clips do test something: Blender repeats and skips frames of the variable-rate ones
    assert blender[paths[1]]["frames"][9:13] == [9, 9, 9, 9]
    assert blender[paths[0]]["frames"] != list(range(30))


SEQUENCE_IN_BLENDER = r"""
import json, sys, bpy
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
from media import fresh_scene, rendered_number
from dynasketch_blender import scene_setup, source
from dynasketch_blender.grease_pencil_builder import Placement

scene = fresh_scene(bpy, {png!r})
clip = bpy.data.movieclips.load({first!r})
clip.frame_start = 11
src = source.from_clip(clip, scene)
# what the clip shows, frame by frame (a clip strip plays it from its own start)
strip = scene.sequence_editor_create().strips.new_clip("clip", clip, 1, 1)
clip_shows = [rendered_number(bpy, scene, 1 + i) for i in range(*src.default_range)]
scene.sequence_editor_clear()
# what the 'footage' background plane shows where the sketch's keyframes go
plane = scene_setup.new_footage_plane(Placement(64, 64), "x", src.path, src.footage_kind(), *src.footage_pictures())
camera = scene_setup.new_camera(Placement(64, 64), "x", clip)
for obj in (plane, camera):
    scene.collection.objects.link(obj)
scene.camera = camera
scene.render.engine = "BLENDER_WORKBENCH"
scene.display.shading.light, scene.display.shading.color_type = "FLAT", "TEXTURE"
plane_shows = [rendered_number(bpy, scene, src.scene_frame_of(i)) for i in range(*src.default_range)]
first, last = src.scene_range()
plane_holds = [rendered_number(bpy, scene, frame) for frame in (first - 2, first - 1, last + 1)]
print("SHOWN", json.dumps({{"input": src.engine_input(), "range": src.default_range, "clip": clip_shows,
                           "plane": plane_shows, "plane_holds": plane_holds}}))
import os; os._exit(0)
"""

SEQUENCE_IN_ENGINE = r"""
import json, sys
sys.path.insert(0, {tests!r})
from media import frame_number
from engine.cli import build_parser
from engine.video import FrameRange, open_video
args = build_parser().parse_args(["sketch", *{paths!r}, "--out", "x"])      # the add-on's input
source = open_video(args.input, args.fps, args.start_number)
print("SHOWN", json.dumps({{"fps": source.info.fps,
                           "frames": [frame_number(rgb) for _, rgb, _ in source.frames(FrameRange(0, source.info.frame_count))]}}))
"""


def test_an_image_sequence_is_sketched_from_the_image_blender_starts_at(tmp_path):
    """Blender reads a sequence from the image the clip was opened with to the first missing
    number: so must the engine, and the footage plane must show the same images."""
    pytest.importorskip("bpy")
    from PIL import Image

    folder = tmp_path / "shot 100%"
    folder.mkdir()
    frames = numbered_frames(12)
    for n in (3, 4, 5, 6, 7, 9, 10):                                  # 8 is missing
        Image.fromarray(frames[n]).save(folder / f"take2 50%_{n:03d}.png")
    blender = shown_by(sys.executable, SEQUENCE_IN_BLENDER, [], png=str(tmp_path / "r.png"),
                       first=str(folder / "take2 50%_004.png"))
    assert blender["clip"] == [4, 5, 6, 7]                            # from the chosen image to the gap
    assert blender["plane"] == blender["clip"]
    assert blender["plane_holds"] == [4, 4, 7]     # not image 3, numbered before the chosen one
    engine = shown_by(ENGINE_PYTHON, SEQUENCE_IN_ENGINE, blender["input"])
    assert engine["frames"] == blender["clip"]
    assert engine["fps"] == 24


PLATES_IN_BLENDER = r"""
import json, sys, bpy
sys.path.insert(0, {tests!r})
from media import rendered_picture
shown = {{}}
for path in {paths!r}:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.view_settings.view_transform = "Standard"
    strips = scene.sequence_editor_create().strips
    movie = path.endswith(".mp4")
    (strips.new_movie if movie else strips.new_image)("plate", path, 1, 1)
    size = bpy.data.movieclips.load(path).size              # (an image's is 0x0 until shown)
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = path + ".png"
    shown[path] = rendered_picture(bpy, scene, 1).tolist()
print("SHOWN", json.dumps(shown))
import os; os._exit(0)
"""

PLATES_IN_ENGINE = r"""
import json
from engine.video import FrameRange, open_video
shown = {{}}
for path in {paths!r}:
    _, rgb, alpha = next(open_video(path).frames(FrameRange(0, 1)))
    shown[path] = {{"rgb": rgb.tolist(), "alpha": None if alpha is None else alpha.tolist()}}
print("SHOWN", json.dumps(shown))
"""


def test_exr_and_dpx_plates_are_read_as_blender_shows_them(tmp_path):
    """A film plate or a render as EXR or DPX: Blender takes both as linear light and shows
    them through the sRGB curve (the Standard view); the engine must see the same picture."""
    pytest.importorskip("bpy")
    ramp = np.linspace(0, 1, 32, dtype=np.float32)[None, :].repeat(24, 0)
    linear = np.dstack([ramp, ramp[:, ::-1] ** 2, np.full_like(ramp, 0.02), (ramp > 0.5).astype(np.float32)])
    linear[:4, :4, 0] = 3.0                                            # over-bright: clipped, as Blender does
    paths = [write_video(str(tmp_path / "render_0001.exr"), linear[None], pix_fmt="gbrapf32le"),
             write_video(str(tmp_path / "scan_0001.dpx"), np.round(np.clip(linear[None, ..., :3], 0, 1) * 1023)
                         .astype(np.uint16), pix_fmt="gbrp10le"),
             write_video(str(tmp_path / "grade_0001.dpx"), np.round(np.clip(linear[None, ..., :3], 0, 1) * 65535)
                         .astype(np.uint16), pix_fmt="rgb48le")]
    scan = bytearray(open(paths[1], "rb").read())
    scan[801] = 1                                   # transfer: printing density, a film scan's log codes
    paths.append(str(tmp_path / "log_scan_0001.dpx"))
    open(paths[-1], "wb").write(scan)               # Blender shows its codes as linear too, not converted
    blender = shown_by(sys.executable, PLATES_IN_BLENDER, paths)
    engine = shown_by(ENGINE_PYTHON, PLATES_IN_ENGINE, paths)
    for path in paths:
        seen, shown = np.array(engine[path]["rgb"]), np.array(blender[path])
        assert seen.shape == shown.shape == (24, 32, 3)
        assert np.abs(seen - shown).max() <= 2, os.path.basename(path)
    assert np.array_equal(np.array(engine[paths[0]]["alpha"]) > 127, linear[..., 3] > 0.5)   # a render's alpha masks
    assert engine[paths[1]]["alpha"] is None


MULTILAYER_RENDER = r"""
import bpy
for path in {paths!r}:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine, scene.cycles.samples = "CYCLES", 1
    scene.render.resolution_x, scene.render.resolution_y = 32, 24
    scene.render.film_transparent = True
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.rotation_euler = (0.6, 0.3, 0)
    scene.collection.objects.link(sun)
    for name, where in (("cube", (-1.5, 0, 0)), ("ball", (1.5, 0, 0.8))):
        things = bpy.data.collections.new(name)
        scene.collection.children.link(things)
        shape = bpy.data.meshes.new(name)
        shape.from_pydata([(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], [],
                          [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)])
        thing = bpy.data.objects.new(name, shape)
        thing.location = where
        things.objects.link(thing)
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.location, camera.rotation_euler = (0, -8, 0), (1.5708, 0, 0)
    scene.collection.objects.link(camera)
    scene.camera = camera
    first = scene.view_layers[0]                         # "ViewLayer": the cube
    first.layer_collection.children["ball"].exclude = True
    other = scene.view_layers.new("Another")             # the ball; created second, named to sort first
    other.layer_collection.children["cube"].exclude = True
    other.use_pass_z = other.use_pass_ambient_occlusion = True   # 4.x sorts "AO" before "Combined"
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):                  # 5.0
        settings.media_type = "MULTI_LAYER_IMAGE"
    settings.file_format = "OPEN_EXR_MULTILAYER"
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
print("SHOWN {{}}")
import os; os._exit(0)
"""


def test_a_multilayer_exr_render_is_read_as_blender_shows_it(tmp_path):
    """Blender's OpenEXR MultiLayer output (every view layer and pass in one file) is what
    compositing artists render. ffmpeg reads only a named layer of it; Blender shows the
    Combined pass of the file's first layer (4.x writes the layers sorted by name, 5.x in the
    view layers' order), so the engine must pick the same one."""
    pytest.importorskip("bpy")
    path = str(tmp_path / "render_0001.exr")
    shown_by(sys.executable, MULTILAYER_RENDER, [path])
    blender = shown_by(sys.executable, PLATES_IN_BLENDER, [path])
    engine = shown_by(ENGINE_PYTHON, PLATES_IN_ENGINE, [path])
    seen, shown, alpha = np.array(engine[path]["rgb"]), np.array(blender[path]), np.array(engine[path]["alpha"])
    assert seen.shape == shown.shape == (24, 32, 3)
    assert np.abs(seen - shown).max() <= 2
    assert 0.05 < (alpha > 127).mean() < 0.6                 # the layer's object, its alpha masking it
    assert seen[alpha > 127].mean() > 60                     # lit, not black


def test_colour_tagged_movies_are_read_in_blenders_colours(tmp_path):
    """HD cameras record BT.709 YUV, some full range (0-255): the engine must turn it into the
    RGB Blender shows, not the BT.601 studio-range default, which shifts saturated colours
    by 10-20 levels."""
    pytest.importorskip("bpy")
    colours = np.array([(230, 30, 30), (30, 200, 40), (30, 40, 220), (240, 240, 30),
                        (20, 20, 20), (250, 250, 250), (200, 120, 60), (60, 200, 200)], np.uint8)
    bars = np.repeat(colours[None, :], 16, 1).repeat(32, 0)                # 32x128, 16 pixels a bar
    paths = [write_video(str(tmp_path / f"{matrix}_{value_range}.mp4"), bars[None].repeat(3, 0),
                         colour=(matrix, value_range))
             for matrix, value_range in (("bt709", "tv"), ("bt709", "pc"), ("bt601", "pc"), ("bt601", "tv"))]
    paths.append(write_video(str(tmp_path / "untagged.mp4"), bars[None].repeat(3, 0)))
    blender = shown_by(sys.executable, PLATES_IN_BLENDER, paths)
    engine = shown_by(ENGINE_PYTHON, PLATES_IN_ENGINE, paths)
    for path in paths:
        seen, shown = np.array(engine[path]["rgb"])[16, 8::16], np.array(blender[path])[16, 8::16]
        assert np.abs(seen - shown).max() <= 3, os.path.basename(path)
        assert np.abs(shown - colours).max() <= 8, os.path.basename(path)       # the colours recorded


CLIP_STRIPS_IN_BLENDER = r"""
import json, os, sys, bpy
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
from media import fresh_scene, rendered_number
from dynasketch_blender import source

movie, first_image = {paths!r}
cases = {{"plain": dict(), "offset and trims": dict(clip_start=5, clip_offset=2, trims=(3, 4)),
         "hold offsets": dict(clip_offset=1, hold=(2, 3)),
         "reversed": dict(clip_offset=2, trims=(1, 2), reverse=True),
         "image sequence": dict(path=first_image, clip_offset=1, trims=(2, 0))}}
shown = {{}}
for name, case in cases.items():
    scene = fresh_scene(bpy, os.path.join(os.path.dirname(movie), "shown.png"))
    clip = bpy.data.movieclips.load(case.get("path", movie))
    clip.frame_start, clip.frame_offset = case.get("clip_start", 1), case.get("clip_offset", 0)
    strip = scene.sequence_editor_create().strips.new_clip("clip", clip, 1, 20)
    strip.animation_offset_start, strip.animation_offset_end = case.get("hold", (0, 0))
    strip.frame_offset_start, strip.frame_offset_end = case.get("trims", (0, 0))
    strip.use_reverse_frames = case.get("reverse", False)
    src = source.from_strip(strip, scene)
    first, last = src.scene_range()
    numbers = []                           # over the strip: what Blender shows, what is sketched
    for frame in range(strip.frame_final_start, strip.frame_final_end):
        numbers.append([rendered_number(bpy, scene, frame), src.index_at(frame) if first <= frame <= last else None])
    shown[name] = {{"numbers": numbers, "input": src.engine_input()}}
print("SHOWN", json.dumps(shown))
import os; os._exit(0)
"""


def test_a_clip_strip_is_sketched_as_the_sequencer_plays_it(tmp_path):
    """A movie clip strip (a tracked or stabilised clip in the Sequencer) plays clip frame
    (strip frame + the clip's Frame Offset), ignoring the clip's Start Frame: each scene frame
    the sketch covers must be the clip frame Blender's Sequencer shows there."""
    pytest.importorskip("bpy")
    from PIL import Image

    frames = numbered_frames(30)
    movie = write_video(str(tmp_path / "take.mp4"), frames)
    (tmp_path / "seq").mkdir()
    for n in range(12):
        Image.fromarray(frames[n]).save(tmp_path / "seq" / f"take_{n + 1:03d}.png")
    shown = shown_by(sys.executable, CLIP_STRIPS_IN_BLENDER, [movie, str(tmp_path / "seq" / "take_001.png")])
    for name, case in shown.items():
        blender, sketched = zip(*case["numbers"])                      # None: no picture, no sketch
        assert list(blender) == list(sketched), name
    assert [n for n, _ in shown["offset and trims"]["numbers"]][:2] == [5, 6]
    assert shown["reversed"]["numbers"][0] == [None, None]           # clip frame 30 is past the movie
    assert shown["image sequence"]["input"][1:3] == ["--start-number", "1"]
    assert "--colorspace" not in shown["plain"]["input"]           # the Sequencer shows it in the file's own colours


HELD_STRIPS_IN_BLENDER = r"""
import json, os, sys, bpy
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
from media import fresh_scene, shown_and_drawn, write_sketch
from dynasketch_blender import source
from dynasketch_blender.sketch_file import load_sketch
from dynasketch_blender.sketch_job import build_result

(movie,) = {paths!r}
folder = os.path.dirname(movie)
cases = {{"forward": dict(), "reversed": dict(reverse=True), "hold offsets": dict(hold=(2, 1)),
         "held, sketched from later": dict(sketch_from=3), "reversed, on twos": dict(reverse=True, step=2)}}
shown = {{}}
for name, case in cases.items():
    scene = fresh_scene(bpy, os.path.join(folder, "shown.png"))
    strip = scene.sequence_editor_create().strips.new_movie("take", movie, 1, 5)
    strip.animation_offset_start, strip.animation_offset_end = case.get("hold", (0, 0))
    strip.frame_final_start, strip.frame_final_end = 2, 18     # both handles past the footage
    strip.use_reverse_frames = case.get("reverse", False)
    src = source.from_strip(strip, scene)
    first = max(src.default_range[0], case.get("sketch_from", 0))
    doc = write_sketch(os.path.join(folder, "sketch.json"), list(range(first, src.default_range[1], case.get("step", 1))),
                       width=64, height=64, strokes=1)
    doc["source"]["frames"] = [first, src.default_range[1], case.get("step", 1)]     # the range asked for
    with open(os.path.join(folder, "sketch.json"), "w") as f:
        json.dump(doc, f)
    sketch = load_sketch(os.path.join(folder, "sketch.json"))
    obj = build_result(scene, sketch, src, "footage")
    layer = obj.data.layers["Sketch"]
    numbers, plane = shown_and_drawn(bpy, scene, obj, range(strip.frame_final_start - 1, strip.frame_final_end + 1))
    keyframes = [k.frame_number for k in layer.frames]
    (sketch_scene,) = obj.users_scene
    shown[name] = {{"numbers": numbers, "plane": plane, "range": [sketch_scene.frame_start, sketch_scene.frame_end],
                   "keyframes": keyframes, "edit": [scene.frame_start, scene.frame_end],
                   "instanced": len(keyframes) > 1 and layer.frames[0].drawing == layer.frames[1].drawing}}
print("SHOWN", json.dumps(shown))
import os; os._exit(0)
"""


def test_a_strip_is_drawn_and_backed_as_the_sequencer_plays_it_holds_and_reverse_included(tmp_path):
    """A strip's handles dragged past its footage hold its first and last pictures there, and
    a reversed strip plays them backwards: at every frame of the strip, the drawing shown and
    the Footage background must be those of the picture the Sequencer shows, and the scene's
    range, matched to the strip, must span it."""
    pytest.importorskip("bpy")
    movie = write_video(str(tmp_path / "take.mp4"), numbered_frames(10))
    shown = shown_by(sys.executable, HELD_STRIPS_IN_BLENDER, [movie])
    for name in ("forward", "reversed", "hold offsets"):
        case = shown[name]
        assert all(picture == drawn for picture, drawn in case["numbers"]), (name, str(case["numbers"]))
        assert case["keyframes"][:2] == [2, 5] and case["instanced"], name      # one drawing, shown twice
        assert case["range"] == [2, 17] and case["edit"] == [1, 250], name      # the sketch scene's, not the edit's
    assert [p for p, _ in shown["forward"]["numbers"]][:5] == [None, 0, 0, 0, 0]  # Blender does hold there
    assert [p for p, _ in shown["reversed"]["numbers"]][:5] == [None, 9, 9, 9, 9]
    for name, case in shown.items():
        assert case["numbers"][0] == case["numbers"][-1] == [None, None], name   # nothing outside the strip
        assert case["keyframes"][-1] == 18, name                                 # where the drawing ends
        assert case["plane"] == [picture for picture, _ in case["numbers"]], name    # the Footage background
    twos = shown["reversed, on twos"]               # 8, 6, ... 0 drawn; 9 plays first, with 8's drawing
    assert all(drawn == min(picture + picture % 2, 8) for picture, drawn in twos["numbers"][1:-1]), str(twos)
    assert twos["range"] == [2, 17] and twos["instanced"]
    later = shown["held, sketched from later"]                   # a range from frame 3: no hold to draw
    assert later["keyframes"][0] == 8 and [d for _, d in later["numbers"]][:7] == [None] * 7


FOOTAGE_COLOURS = r"""
import json, os, sys, bpy
import numpy as np
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
from media import fresh_scene, rendered_picture, write_sketch
from dynasketch_blender import source
from dynasketch_blender.sketch_file import load_sketch
from dynasketch_blender.sketch_job import build_result

movie, still = {paths!r}
folder = os.path.dirname(movie)
write_sketch(os.path.join(folder, "sketch.json"), [0], width=128, height=96, strokes=1)
sketch = load_sketch(os.path.join(folder, "sketch.json"))


def footage_image(obj):
    (plane,) = [o for o in obj.users_scene[0].objects if o.type == "MESH"]
    return plane.data.materials[0].node_tree.nodes["Image Texture"].image


shown = {{}}
for name in ("movie strip", "image strip", "clip strip", "clip"):
    edit = fresh_scene(bpy, os.path.join(folder, "shown.png"))
    edit.render.resolution_x, edit.render.resolution_y = 128, 96
    theirs = bpy.data.images.load(movie)                   # the user's own image of the movie
    theirs.source = "MOVIE"
    theirs.colorspace_settings.name = "Linear Rec.709"
    strips = edit.sequence_editor_create().strips
    clip = bpy.data.movieclips.load(movie)
    if name == "movie strip":
        strip = strips.new_movie("take", movie, 1, 1)
    elif name == "image strip":
        strip = strips.new_image("take", still, 1, 1)
    else:
        strip = strips.new_clip("take", clip, 1, 1)
    (clip if name.startswith("clip") else strip).colorspace_settings.name = "Filmic Log"
    src = source.from_clip(clip, edit) if name == "clip" else source.from_strip(strip, edit)
    obj = build_result(edit, sketch, src, "footage")
    image = footage_image(obj)
    case = {{"colour space": image.colorspace_settings.name}}
    if name != "clip":                                     # (the Clip Editor cannot render here)
        scene = obj.users_scene[0]
        scene.render.engine = "BLENDER_WORKBENCH"          # EEVEE hangs without a display
        scene.render.filepath = edit.render.filepath
        obj.hide_render = True
        for s in strips:
            s.mute = s.type == "SCENE"
        sequencer = rendered_picture(bpy, edit, 1).astype(int)
        footage = rendered_picture(bpy, scene, 1).astype(int)
        case["ground"] = np.median(sequencer, axis=(0, 1)).tolist()
        case["difference"] = float(np.abs(footage - sequencer).mean())
    case["again"] = footage_image(build_result(edit, sketch, src, "footage")) == image   # the same image
    case["theirs"] = theirs.colorspace_settings.name == "Linear Rec.709" and image != theirs
    shown[name] = case
print("SHOWN", json.dumps(shown))
import os; os._exit(0)
"""


def test_the_footage_background_shows_the_footage_in_the_colour_space_blender_reads_it(tmp_path):
    """Log or ACES footage is read in the colour space set on its strip: the Footage
    background must show the picture the Sequencer shows, not the file read as sRGB. The
    Sequencer reads a clip strip's movie as sRGB whatever its clip's colour space (Blender
    4.5 and 5.0 alike), the Clip Editor in the clip's. An image of the movie the user has
    stays as it was."""
    pytest.importorskip("bpy")
    from PIL import Image

    frames, _ = moving_disc(t_len=3)
    movie = write_video(str(tmp_path / "log.mp4"), frames)
    still = str(tmp_path / "log.png")
    Image.fromarray(frames[0]).save(still)
    shown = shown_by(sys.executable, FOOTAGE_COLOURS, [movie, still])
    for name in ("movie strip", "image strip"):
        case = shown[name]
        assert case["colour space"] == "Filmic Log", name
        assert case["difference"] < 5, (name, case)                      # the same picture (read as sRGB: 23)
        assert min(case["ground"]) > 250, (name, case)                  # not sRGB's 235
    clip_strip = shown["clip strip"]
    assert clip_strip["ground"] == [235, 235, 235] and clip_strip["difference"] < 5, clip_strip
    assert shown["clip"]["colour space"] == "Filmic Log"
    assert all(case["theirs"] and case["again"] for case in shown.values()), shown


TAGGED_IN_BLENDER = r"""
import json, os, sys, bpy
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
from media import fresh_scene, rendered_picture
from dynasketch_blender import source
shown = {{}}
for path, colorspace in {paths!r}:
    scene = fresh_scene(bpy, path + ".shown.png")
    scene.render.image_settings.file_format = "PNG"
    scene.render.resolution_x, scene.render.resolution_y = 64, 32
    strips = scene.sequence_editor_create().strips
    strip = (strips.new_movie if path.endswith(".mp4") else strips.new_image)("take", path, 1, 1)
    default = strip.colorspace_settings.name
    strip.colorspace_settings.name = colorspace
    case = dict(default=default, input=source.from_strip(strip, scene).engine_input())
    case["picture"] = rendered_picture(bpy, scene, 1).tolist()
    if path.endswith(".mp4"):                          # the same movie as a clip in the Clip Editor
        clip = bpy.data.movieclips.load(path)
        clip.colorspace_settings.name = colorspace
        case["clip input"] = source.from_clip(clip, scene).engine_input()
    shown[path + colorspace] = case
print("SHOWN", json.dumps(shown))
import os; os._exit(0)
"""

TAGGED_IN_ENGINE = r"""
import json
from engine.cli import build_parser
from engine.colour import ShownColours
from engine.video import FrameRange, open_video
shown = {{}}
for name, arguments in {paths!r}:
    args = build_parser().parse_args(["sketch", *arguments, "--out", "x"])      # the add-on's input
    colour = ShownColours(args.colorspace, args.ocio_config) if args.colorspace else None
    source = open_video(args.input, args.fps, args.start_number, colour)
    _, rgb, _ = next(source.frames(FrameRange(0, 1)))
    shown[name] = {{"picture": rgb.tolist(), "converted": source.colour is not None}}
print("SHOWN", json.dumps(shown))
"""


def test_footage_tagged_with_a_colour_space_is_sketched_as_blender_shows_it(tmp_path):
    """A log camera clip or an ACES render is tagged with its colour space in Blender, which
    shows it converted (the Standard view): the engine must draw on that picture, not on the
    flat log codes or the file read as sRGB. Footage left in Blender's default colour space is
    read as before, without OpenColorIO."""
    pytest.importorskip("bpy")
    from PIL import Image

    x = np.linspace(0, 1, 64, dtype=np.float32)[None, :].repeat(32, 0)
    light = np.dstack([x, x[:, ::-1] * 0.8, np.full_like(x, 0.3)])         # (32, 64, 3)
    light[:8, :8] = 4.0                                                     # over-bright highlights
    codes = np.round(np.clip(light, 0, 1) * 255).astype(np.uint8)
    movie = write_video(str(tmp_path / "log.mp4"), codes[None].repeat(2, 0), pix_fmt="yuv444p")
    png = str(tmp_path / "still.png")
    Image.fromarray(codes).save(png)
    exr = write_video(str(tmp_path / "render.exr"), np.dstack([light, np.ones_like(x)])[None], pix_fmt="gbrapf32le")
    cases = [(movie, "Filmic Log"), (movie, "sRGB"), (png, "ACEScg"), (exr, "ACEScg"), (exr, "sRGB"),
             (exr, "Linear Rec.709")]
    blender = shown_by(sys.executable, TAGGED_IN_BLENDER, cases)
    engine = shown_by(ENGINE_PYTHON, TAGGED_IN_ENGINE, [(k, case["input"]) for k, case in blender.items()])
    for path, colorspace in cases:
        case, seen = blender[path + colorspace], engine[path + colorspace]
        shown, picture = np.array(case["picture"]), np.array(seen["picture"])
        assert case["input"][-4:-2] == ["--colorspace", colorspace] and os.path.isfile(case["input"][-1])
        assert seen["converted"] == (colorspace != case["default"]), (path, colorspace)
        tolerance = 3 if path == movie else 2                              # the movie: YUV rounding
        assert np.abs(picture - shown).max() <= tolerance, (os.path.basename(path), colorspace,
                                                            np.abs(picture - shown).max())
    # the conversions are not a no-op: log codes are brightened, ACEScg's wide gamut shifts hues
    assert np.abs(np.array(blender[movie + "Filmic Log"]["picture"]) - codes).mean() > 20
    assert np.abs(np.array(blender[exr + "ACEScg"]["picture"]) - np.array(blender[exr + "Linear Rec.709"]["picture"])).max() > 10
    assert blender[movie + "Filmic Log"]["clip input"][-4:-2] == ["--colorspace", "Filmic Log"]


SKETCH_IN_THE_EDIT = r"""
import json, os, sys, bpy
import numpy as np
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
from media import fresh_scene, rendered_picture, write_sketch
from dynasketch_blender import source
from dynasketch_blender.sketch_file import load_sketch
from dynasketch_blender.sketch_job import build_result

(movie,) = {paths!r}
folder = os.path.dirname(movie)
edit = fresh_scene(bpy, os.path.join(folder, "edit.png"), size=96)
edit.render.resolution_x, edit.frame_start, edit.frame_end = 160, 1, 40
strips = edit.sequence_editor_create().strips
strip = strips.new_movie("take", movie, 3, 5)                              # frames 5-16
strip.transform.offset_x, strip.transform.scale_x, strip.transform.scale_y = 20, 0.8, 0.8
strip.crop.min_x = 6
strips.new_movie("next shot", movie, 4, 14)                                 # over the take's last frames
src = source.from_strip(strip, edit)


def sketch(background):
    write_sketch(os.path.join(folder, "sketch.json"), list(range(12)), width=96, height=64, strokes=1)
    obj = build_result(edit, load_sketch(os.path.join(folder, "sketch.json")), src, background)
    (scene,) = obj.users_scene
    scene.render.engine = "BLENDER_WORKBENCH"                  # EEVEE hangs without a display
    return [s for s in strips if s.type == "SCENE"]


def rendered(frame, muted):
    for s in strips:
        s.mute = s.type == "SCENE" and muted
    return rendered_picture(bpy, edit, frame, "L").astype(int)


def compare(frames):
    # per frame: pixels the sketch strip changes, and of those how many it darkens (ink)
    out = []
    for frame in frames:
        footage, with_sketch = rendered(frame, True), rendered(frame, False)
        changed = np.abs(with_sketch - footage) > 24
        out.append([int(changed.sum()), int((changed & (with_sketch < footage)).sum()), int(footage.size)])
    return out


shown = {{}}
(first,) = sketch("footage")
shown["footage"] = compare([4, 9, 17])
shown["placed"] = [first.channel, first.frame_final_start, first.frame_final_end, first.blend_type]
first.blend_alpha = 0.5                                         # the editor's choice, kept by a new sketch
again = sketch("transparent")
shown["transparent"] = compare([9])
shown["again"] = [[s.channel, s.frame_final_start, s.frame_final_end, s.blend_alpha] for s in again]
shown["scenes"] = len(bpy.data.scenes)
shown["edit"] = [edit.render.resolution_x, edit.render.resolution_y, edit.frame_start, edit.frame_end,
                 edit.render.fps, edit.camera is None, edit.render.film_transparent]
print("SHOWN", json.dumps(shown))
import os; os._exit(0)
"""


def test_a_strip_sketch_shows_in_the_edit_over_the_strip_lined_up_with_its_footage(tmp_path):
    """F12 renders an edit's strips, not a camera: a strip's sketch gets a scene of its own and
    a scene strip above the strip, over its frames and placed as it is (moved, scaled,
    cropped), so the edit shows the drawing on the footage; the edit's own settings stay, and
    sketching again replaces that scene strip, keeping the editor's blend."""
    pytest.importorskip("bpy")
    frames, _ = moving_disc(12, size=(64, 96))
    movie = write_video(str(tmp_path / "take.mp4"), frames)
    shown = shown_by(sys.executable, SKETCH_IN_THE_EDIT, [movie])
    before, during, after = shown["footage"]
    assert before[0] == after[0] == 0                        # outside the strip the edit is as it was
    changed, darker, size = during
    # the ink darkens; the footage behind it, drawn on a plane by the sketch's camera, lines up:
    # resampling brightens a few edge pixels, where a shift of one pixel would change 245-352
    assert darker > 20 and changed < 0.05 * size and changed - darker < 100, during
    assert shown["placed"] == [5, 5, 17, "ALPHA_OVER"]        # channel 4 is taken there
    ((changed, darker, _),) = shown["transparent"]
    assert changed > 20 and darker == changed                 # ink over the footage
    assert shown["again"] == [[5, 5, 17, 0.5]] and shown["scenes"] == 2
    assert shown["edit"] == [160, 96, 1, 40, 24, True, False]


OWN_RATE_STRIPS = r"""
import json, os, sys, bpy
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
from media import add_movie_as_the_ui_does, shown_and_drawn, write_sketch
from dynasketch_blender import source
from dynasketch_blender.sketch_file import load_sketch
from dynasketch_blender.sketch_job import build_result

movies = dict(zip((30, 24, 25), {paths!r}))
folder = os.path.dirname(movies[30])
cases = {{"30 in 24, held": dict(fps=(30, 24), handles=(3, 31)),
         "30 in 24, reversed": dict(fps=(30, 24), reverse=True, hold=(2, 1), trims=(1, 2)),
         "30 in 24, every other frame": dict(fps=(30, 24), step=2),
         "24 in 30, held": dict(fps=(24, 30), hold=(1, 2), handles=(5, 40)),
         "24 in 30, reversed": dict(fps=(24, 30), reverse=True, handles=(2, 30)),
         "25 in 24": dict(fps=(25, 24))}}
shown = {{}}
for name, case in cases.items():
    bpy.ops.wm.read_homefile(use_empty=False)                 # a window, as the UI has
    scene = bpy.context.scene
    for obj in list(scene.objects):                           # the startup cube would hide the plane
        bpy.data.objects.remove(obj)
    scene.world = None                                        # black where nothing is shown
    (movie_fps, scene.render.fps), scene.render.fps_base = case["fps"], 1.0
    scene.view_settings.view_transform = "Standard"
    scene.render.resolution_x = scene.render.resolution_y = 64
    scene.render.filepath = os.path.join(folder, "shown.png")
    strip = add_movie_as_the_ui_does(bpy, scene, movies[movie_fps], frame_start=5)
    scene.sequence_editor.use_cache_raw = False     # Blender's raw cache can repeat a picture at rates below 1
    strip.animation_offset_start, strip.animation_offset_end = case.get("hold", (0, 0))
    strip.frame_offset_start, strip.frame_offset_end = case.get("trims", (0, 0))
    if "handles" in case:
        strip.frame_final_start, strip.frame_final_end = case["handles"]
    strip.use_reverse_frames = case.get("reverse", False)
    src = source.from_strip(strip, scene, count_frames=True)
    in_panel = source.from_strip(strip, scene)                  # a draw() does not count
    write_sketch(os.path.join(folder, "sketch.json"), list(range(*src.default_range, case.get("step", 1))),
                 width=64, height=64, strokes=1)
    obj = build_result(scene, load_sketch(os.path.join(folder, "sketch.json")), src, "footage")
    frames = range(strip.frame_final_start - 1, strip.frame_final_end + 1)     # and a frame on each side
    numbers, plane = shown_and_drawn(bpy, scene, obj, frames)
    (sketch_scene,) = obj.users_scene
    shown[name] = {{"numbers": numbers, "plane": plane, "range": [sketch_scene.frame_start, sketch_scene.frame_end],
                   "strip": [frames[1], frames[-2]], "scene range": [src.scene_range(), in_panel.scene_range()],
                   "keyframes": len(obj.data.layers["Sketch"].frames), "clips": len(bpy.data.movieclips),
                   "fps": [scene.render.fps, sketch_scene.render.fps]}}
print("SHOWN", json.dumps(shown))
import os; os._exit(0)
"""


def test_a_strip_playing_its_movie_at_the_movies_own_rate_is_drawn_picture_for_picture(tmp_path):
    """Blender's Add > Movie makes a 30 fps phone clip in a 24 fps scene play at its own speed,
    skipping every fifth frame (and a 24 fps clip in a 30 fps scene repeat frames): at every
    frame of the strip, held, reversed and trimmed ones included, the drawing shown and the
    Footage background must be those of the picture the Sequencer shows."""
    pytest.importorskip("bpy")
    paths = [write_video(str(tmp_path / f"take{fps}.mp4"), numbered_frames(fps), fps=fps) for fps in (30, 24, 25)]
    shown = shown_by(sys.executable, OWN_RATE_STRIPS, paths)
    for name, case in shown.items():
        assert case["numbers"][0] == case["numbers"][-1] == [None, None], name   # nothing outside the strip
        assert case["plane"][0] is None and case["plane"][-1] is None, name
        case["numbers"], case["plane"] = case["numbers"][1:-1], case["plane"][1:-1]
        pictures = [picture for picture, _ in case["numbers"]]
        assert None not in pictures and case["plane"] == pictures, name      # the Footage background
        if "every other" in name:                 # the last drawing sketched up to that picture
            assert all(drawn == picture - picture % 2 for picture, drawn in case["numbers"]), str(case["numbers"])
            assert case["range"] == [5, 27]       # to the last frame showing the last one drawn, 28
        else:
            assert all(picture == drawn for picture, drawn in case["numbers"]), (name, str(case["numbers"]))
            assert case["range"] == case["strip"], name      # the sketch scene spans the strip, holds too
        assert case["scene range"][0] == case["scene range"][1], name     # the panel's frames are right
        assert case["clips"] == 0, name                      # counting the movie's frames left no clip
    forward = [picture for picture, _ in shown["30 in 24, held"]["numbers"]]
    assert forward[:4] == [0, 0, 0, 1] and 2 not in forward and forward[-3:] == [29, 29, 29]   # held; 2 skipped
    assert shown["30 in 24, held"]["keyframes"] == 24 + 2    # one a picture shown, the held one, the end
    slower = [picture for picture, _ in shown["24 in 30, held"]["numbers"]]
    assert slower[:4] == [1, 2, 3, 3] and len(slower) > len(set(slower))         # pictures repeat
    assert [case["fps"] for case in shown.values()] == [[24, 24]] * 3 + [[30, 30]] * 2 + [[24, 24]]   # the edit's rate
    assert [picture for picture, _ in shown["25 in 24"]["numbers"]][11:14] == [11, 13, 14]   # 12 x 25/24 = 12.5
