"""The Sketch operator with the real engine subprocess (fast preset): a movie clip, a trimmed
movie strip, the step functions the modal operator calls, errors, a crash half way, and
cancel. Skipped, with the reason, while the engine's command line does not work."""
import json
import os
import subprocess
import sys
import time

import numpy as np

import pytest
from conftest import ENGINE_PYTHON
import helpers
from helpers import check_against_sketch, keyframes, sketch_objects
from media import add_movie_as_the_ui_does, moving_disc, write_sketch, write_video

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def configure_fast(bpy, scene=None, strokes=4):
    s = (scene or bpy.context.scene).dynasketch
    s.preset, s.strokes, s.seeds, s.mask_mode, s.device = "fast", strokes, 1, "none", "cpu"
    return s


def test_sketch_movie_clip(blender, engine_cli, disc_movie, tmp_path):
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    clip.frame_start = 10
    settings = configure_fast(bpy)
    settings.use_source_range, settings.frame_start, settings.frame_end = False, 12, 17   # source 2..7
    settings.frame_step = 2
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert doc["complete"] and [f["index"] for f in doc["frames"]] == [2, 4, 6]
    check_against_sketch(obj, doc, lambda i: 10 + i)
    assert [k.frame_number for k in keyframes(obj)] == [12, 14, 16]
    assert len(keyframes(obj)[0].drawing.strokes) == 4
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (12, 17)     # the range asked for, to its end
    assert (scene.render.resolution_x, scene.render.resolution_y) == (128, 96)
    assert scene.camera.data.background_images[0].clip == clip
    assert settings.status == f"Sketched 3 frames into {obj.name}" and not settings.failed
    assert not settings.running and settings.progress == 1.0
    # F12 renders the sketch aligned with the footage: ink at the strokes' pixels
    blend = tmp_path / "sketched.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    gray = render_in_subprocess(blend, frame=14, png=tmp_path / "frame14.png")
    assert gray.shape == (96, 128) and np.median(gray) > 200
    for stroke in doc["frames"][1]["strokes"]:                        # source frame 4 plays at 14
        pts, s = np.array(stroke["points"]), (len(stroke["points"]) - 1) // 3
        seg = pts[3 * (s // 2):3 * (s // 2) + 4]                        # the curve's middle, not a thin end:
        x, y = (seg[0] + 3 * seg[1] + 3 * seg[2] + seg[3]) / 8 if s % 2 else seg[0]   # a knot when S is even
        if 3 <= x < 125 and 3 <= y < 93:
            # paper is 255; one antialiased 0.9 px line there renders about 190-210
            assert gray[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3].min() < 235, (x, y)


def test_a_mask_sequence_picked_by_its_first_image_masks_each_frame(blender, engine_cli, tmp_path):
    """A roto artist's mask renders, numbered from 1001 beside an older matte: picking
    matte.1001.png has the engine read the masks from 1001 on (tests/test_video.py checks
    that it lines them up), not the old matte, and a mask image saved again is a new job."""
    bpy = blender
    from PIL import Image

    from dynasketch_blender import operators, sketch_job, source

    frames, masks = moving_disc(t_len=6, speed=12)
    clip = bpy.data.movieclips.load(write_video(str(tmp_path / "disc.mp4"), frames))
    stale = np.zeros_like(masks[0])
    stale[:, 110:] = 255                                   # the old matte: the right edge, never the disc
    for n in range(997, 1007):
        Image.fromarray(masks[n - 1001] if n >= 1001 else stale).save(tmp_path / f"matte.{n}.png")
    settings = configure_fast(bpy)
    settings.mask_mode, settings.mask_path = "file", str(tmp_path / "matte.1001.png")
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, settings.status
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert doc["settings"]["mask_start_number"] == 1001 and len(doc["frames"]) == 6
    for frame in doc["frames"]:                            # the disc, of radius 18, at x = 30 + 12k
        x, y = np.mean([s["points"] for s in frame["strokes"]], axis=(0, 1))
        assert abs(x - (30 + 12 * frame["index"])) < 12 and abs(y - 48) < 12, (frame["index"], x, y)
    src = source.from_clip(clip)
    job = sketch_job.SketchJob(operators.engine_command(bpy.context), src, operators.job_options(settings, src))
    assert job.out == os.path.dirname(obj["dynasketch_sketch"])
    assert {str(tmp_path / f"matte.{n}.png") for n in range(1001, 1007)} <= set(job.inputs)


def test_footage_saved_again_is_sketched_afresh(blender, engine_cli, tmp_path):
    """The clip re-exported to the same path (same size and length): Sketch again gives a
    sketch of the new footage, not the engine's refusal of other input in the old job folder;
    the old job's folder, which can never resume, goes once the new sketch is built."""
    bpy = blender
    from dynasketch_blender import job_folders
    from test_job_folders import fake_job

    frames, _ = moving_disc(t_len=6)
    path = write_video(str(tmp_path / "take.mp4"), frames)
    other = write_video(str(tmp_path / "other.mp4"), frames)
    clip = bpy.data.movieclips.load(path)
    settings = configure_fast(bpy)
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    first = os.path.dirname(obj["dynasketch_sketch"])
    record = json.load(open(os.path.join(first, job_folders.RECORD)))
    assert record["source"] == path and list(record["inputs"]) == [path]
    # Jobs of other clips, one whose file is as it was and one whose file has gone (a drive
    # not mounted), could still resume: they stay. So does what the add-on did not make.
    root = tmp_path / "dynasketch"
    kept = fake_job(root, "other-1", job_folders.input_stamps([other]))
    away = fake_job(root, "away-1", {str(tmp_path / "unmounted" / "clip.mp4"): "10:10"})
    (root / "notes").mkdir()

    before = os.stat(path).st_mtime_ns
    write_video(path, np.ascontiguousarray(frames[:, :, ::-1]))           # now the disc moves left
    os.utime(path, ns=(before + 10**9, before + 10**9))
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, settings.status
    assert not settings.failed
    (obj,) = sketch_objects(bpy)
    second = os.path.dirname(obj["dynasketch_sketch"])
    assert second != first and not os.path.exists(first)
    assert sorted(os.listdir(root)) == sorted(["away-1", "notes", "other-1", os.path.basename(second)])
    assert (kept / "preview.mp4").exists() and (away / "sketch.json").exists()
    doc = json.load(open(obj["dynasketch_sketch"]))
    centres = [np.mean([s["points"] for s in f["strokes"]], axis=(0, 1)) for f in doc["frames"]]
    assert centres[-1][0] - centres[0][0] < -7                              # about -15 px


def test_a_job_folder_holding_another_sketch_is_sketched_over(blender, engine_cli, disc_movie):
    """The engine refuses to resume a sketch made from other settings or backends (weights
    found since make `auto` pick another one); the add-on's job folder is its own, so Sketch
    replaces what is there."""
    bpy = blender
    from dynasketch_blender import operators, source, sketch_job

    clip = bpy.data.movieclips.load(disc_movie)
    settings = configure_fast(bpy, strokes=3)
    src = source.from_clip(clip)
    folder = sketch_job.SketchJob(operators.engine_command(bpy.context), src,
                                  operators.job_options(settings, src)).out
    other = subprocess.run([ENGINE_PYTHON, "-m", "engine", "sketch", disc_movie, "--out", folder,
                            "--preset", "fast", "--strokes", "2", "--frames", "0:2", "--mask", "none",
                            "--no-preview"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert other.returncode == 0, other.stderr
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, settings.status
    (obj,) = sketch_objects(bpy)
    assert obj["dynasketch_sketch"] == os.path.join(folder, "sketch.json")
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert doc["complete"] and len(doc["frames"]) == 10
    assert all(len(f["strokes"]) == 3 for f in doc["frames"])


RENDER = """
import bpy
bpy.ops.wm.open_mainfile(filepath={blend!r})
scene = bpy.context.scene
scene.render.engine = "BLENDER_WORKBENCH"
scene.frame_set({frame})
scene.render.filepath = {png!r}
bpy.ops.render.render(write_still=True)
import os; os._exit(0)     # bpy 4.5 can hang in its EGL teardown after the image is written
"""


def render_in_subprocess(blend, frame, png):
    from PIL import Image

    done = subprocess.run([sys.executable, "-c", RENDER.format(blend=str(blend), frame=frame, png=str(png))],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    return np.asarray(Image.open(png).convert("L")).astype(float)


DECODE_FIRST_FRAME = """
import sys, numpy as np
from engine.video import FrameRange, open_video
_, rgb, _ = next(open_video(sys.argv[1]).frames(FrameRange(0, 1)))
np.save(sys.argv[2], rgb)
"""


def test_a_phone_clip_is_sketched_upright_as_blender_shows_it(blender, engine_cli, tmp_path):
    """A phone's portrait clip is stored landscape with a display rotation. Blender shows it
    portrait, so the engine must sketch that picture, at that size, for the strokes to sit on it."""
    bpy = blender
    frames, _ = moving_disc(t_len=4)
    path = write_video(str(tmp_path / "phone.mp4"), frames, rotation=90)
    clip = bpy.data.movieclips.load(path)
    assert tuple(clip.size) == (96, 128)
    configure_fast(bpy, strokes=3)
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    scene = bpy.context.scene
    assert (doc["width"], doc["height"]) == (scene.render.resolution_x, scene.render.resolution_y) == (96, 128)
    # the picture the engine sketched is the one Blender shows, not turned another way
    image = bpy.data.images.load(path)
    image.source = "MOVIE"
    shown = np.array(image.pixels[:]).reshape(128, 96, 4)[::-1, :, :3] * 255      # rows top first
    subprocess.run([ENGINE_PYTHON, "-c", DECODE_FIRST_FRAME, path, str(tmp_path / "rgb.npy")],
                   cwd=ROOT, check=True, timeout=120)
    sketched = np.load(tmp_path / "rgb.npy").astype(float)
    assert sketched.shape == shown.shape
    assert np.abs(sketched - shown).mean() < 8
    assert np.abs(sketched - shown[::-1, ::-1]).mean() > 20


def test_an_image_sequence_clip_is_sketched_where_blender_plays_it(blender, engine_cli, tmp_path):
    """A render's PNG sequence opened in the Clip Editor from one of its images: the engine
    reads the images Blender shows (from that one to the first missing number, at the
    scene's frame rate) and each keyframe lands where its image plays."""
    bpy = blender
    from PIL import Image

    frames, _ = moving_disc(t_len=10)
    for n, frame in zip(range(101, 111), frames):
        Image.fromarray(frame).save(tmp_path / f"render_{n:04d}.png")
    scene = bpy.context.scene
    scene.render.fps = 30
    clip = bpy.data.movieclips.load(str(tmp_path / "render_0103.png"))
    clip.frame_start = 20
    settings = configure_fast(bpy, strokes=3)
    settings.background = "footage"
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert doc["source"]["path"] == str(tmp_path / "render_%04d.png") and doc["source"]["start_number"] == 103
    assert [f["index"] for f in doc["frames"]] == list(range(8)) and doc["fps"] == 30
    check_against_sketch(obj, doc, lambda i: 20 + i)
    assert (scene.frame_start, scene.frame_end, scene.render.fps) == (20, 27, 30)
    (plane,) = [o for o in bpy.data.objects if o.type == "MESH"]
    texture = plane.data.materials[0].node_tree.nodes["Image Texture"]
    assert texture.image.source == "SEQUENCE" and texture.image_user.frame_offset == 102


def test_a_clip_linked_from_another_blend_file_is_sketched(blender, engine_cli, disc_movie, tmp_path):
    """A studio's shot file links its plate from a library .blend in another folder, whose
    path (//plate.mp4) is relative to that library: the clip is sketched as Blender plays it
    (it was "the movie file is missing", looked for next to the shot file)."""
    bpy = blender
    import shutil

    (tmp_path / "library").mkdir(), (tmp_path / "shot").mkdir()
    shutil.copy(disc_movie, tmp_path / "library" / "plate.mp4")
    bpy.data.movieclips.load(str(tmp_path / "library" / "plate.mp4")).use_fake_user = True
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "library" / "plates.blend"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot" / "shot.blend"))
    with bpy.data.libraries.load(str(tmp_path / "library" / "plates.blend"), link=True, relative=True) as (src, dst):
        dst.movieclips = ["plate.mp4"]
    (clip,) = bpy.data.movieclips
    assert clip.library is not None and clip.filepath == "//plate.mp4" and clip.frame_duration == 10
    assert not os.path.exists(bpy.path.abspath(clip.filepath))       # not next to the shot file
    settings = configure_fast(bpy, strokes=3)
    settings.background = "footage"
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, settings.status
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert doc["source"]["path"] == str(tmp_path / "library" / "plate.mp4")
    check_against_sketch(obj, doc, lambda i: 1 + i)
    assert bpy.context.scene.camera.data.background_images[0].clip == clip
    (plane,) = [o for o in bpy.data.objects if o.type == "MESH"]
    image = plane.data.materials[0].node_tree.nodes["Image Texture"].image
    assert os.path.samefile(bpy.path.abspath(image.filepath), tmp_path / "library" / "plate.mp4")


def test_a_still_image_strip_is_sketched_once(blender, engine_cli, tmp_path):
    """An image strip of one picture, stretched over 30 frames: one drawing, held."""
    bpy = blender
    from PIL import Image

    frames, _ = moving_disc(t_len=1)
    Image.fromarray(frames[0]).save(tmp_path / "portrait.png")
    scene = bpy.context.scene
    strip = scene.sequence_editor_create().strips.new_image("portrait", str(tmp_path / "portrait.png"), 1, 8)
    strip.frame_final_duration = 30
    settings = configure_fast(bpy, strokes=3)
    settings.background = "footage"
    assert bpy.ops.dynasketch.sketch(strip=strip.name) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    assert [k.frame_number for k in keyframes(obj)] == [8, 38]       # the drawing ends with the strip
    assert len(keyframes(obj)[1].drawing.strokes) == 0
    assert settings.status == (f"Sketched 1 frame into {obj.name} (scene DynaSketch portrait, "
                               "shown in the edit by a scene strip)")
    (plane,) = [o for o in bpy.data.objects if o.type == "MESH"]
    assert plane.data.materials[0].node_tree.nodes["Image Texture"].image.source == "FILE"


def test_a_clip_strip_is_sketched_where_the_sequencer_plays_it(blender, engine_cli, disc_movie):
    """A movie clip placed in the Sequencer with its Frame Offset and a trim: keyframes at the
    scene frames where the strip shows each clip frame, over the Footage background."""
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    clip.frame_start, clip.frame_offset = 40, 3                     # Start Frame does not count here
    scene = bpy.context.scene
    strip = scene.sequence_editor_create().strips.new_clip("tracked", clip, 1, 5)
    strip.frame_offset_end = 5                                       # shows clip frames 3..7 at 5..9
    settings = configure_fast(bpy, strokes=3)
    settings.background = "footage"
    assert bpy.ops.dynasketch.sketch(strip=strip.name) == {"FINISHED"}, settings.status
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert [f["index"] for f in doc["frames"]] == [3, 4, 5, 6, 7]
    check_against_sketch(obj, doc, lambda i: 2 + i)
    assert [k.frame_number for k in keyframes(obj, drawn=True)] == list(range(strip.frame_final_start,
                                                                            strip.frame_final_end))
    assert keyframes(obj)[-1].frame_number == strip.frame_final_end                # drawn no further


def test_a_phone_clip_added_to_a_24_fps_edit_is_drawn_where_each_picture_plays(blender, engine_cli, tmp_path):
    """Add > Movie of a 30 fps clip into a 24 fps edit plays it at its own speed, skipping every
    fifth frame: Sketch keys each scene frame with the drawing of the picture shown there, and
    keeps the edit's frame rate."""
    bpy = blender
    frames, _ = moving_disc(t_len=10)
    movie = write_video(str(tmp_path / "phone.mp4"), frames, fps=30)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    strip = add_movie_as_the_ui_does(bpy, scene, movie, frame_start=1)
    assert strip.frame_duration == 8                                 # 10 frames at 30 fps: 8 at 24
    settings = configure_fast(bpy, strokes=3)
    assert bpy.ops.dynasketch.sketch(strip=strip.name) == {"FINISHED"}, settings.status
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert [f["index"] for f in doc["frames"]] == list(range(10))   # every movie frame is sketched
    plays = {0: 1, 1: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7, 9: 8}          # Blender skips frames 2 and 7
    shown = dict(doc, frames=[f for f in doc["frames"] if f["index"] in plays])
    check_against_sketch(obj, shown, plays.get)
    (sketch_scene,) = obj.users_scene                                # the edit shows it in a scene strip
    assert scene.render.fps == sketch_scene.render.fps == 24 and (sketch_scene.frame_start, sketch_scene.frame_end) == (1, 8)
    assert settings.status.startswith(f"Sketched 10 frames into {obj.name} (scene DynaSketch phone.mp4")


def test_sketch_trimmed_movie_strip_through_the_step_functions(blender, engine_cli, disc_movie):
    """What the modal operator does on each timer tick, driven by hand."""
    bpy = blender
    from dynasketch_blender import operators, source, sketch_job

    scene = bpy.context.scene
    strip = scene.sequence_editor_create().strips.new_movie("disc", disc_movie, channel=1, frame_start=5)
    strip.frame_offset_start, strip.frame_offset_end = 2, 4          # shows source frames 2..5
    scene.sequence_editor.active_strip = strip
    settings = configure_fast(bpy, strokes=3)
    src = source.from_strip(strip, scene)
    job = sketch_job.SketchJob(operators.engine_command(bpy.context), src, operators.job_options(settings, src))
    assert job.start() == sketch_job.RUNNING
    seen = []
    deadline = time.monotonic() + 240
    while job.step() == sketch_job.RUNNING:
        seen.append((job.progress, job.message))
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job.state == sketch_job.DONE, job.error
    assert job.process.process.stdout.closed and job.process.process.stderr.closed   # no pipes left open
    progress = [p for p, _ in seen] + [job.progress]
    assert progress == sorted(progress) and progress[-1] == 1.0       # the bar never goes back
    assert any(m.startswith(("decode: ", "initialise: ")) for _, m in seen)
    sketch = job.load()
    obj = sketch_job.build_result(scene, sketch, src)
    doc = json.load(open(job.sketch_path))
    assert [f["index"] for f in doc["frames"]] == [2, 3, 4, 5]
    check_against_sketch(obj, doc, lambda i: 5 + i)                 # scene frames 7..10
    assert [k.frame_number for k in keyframes(obj, drawn=True)] == list(range(strip.frame_final_start,
                                                                            strip.frame_final_end))
    assert keyframes(obj)[-1].frame_number == strip.frame_final_end                # drawn no further


def test_failing_engine_is_one_clear_line_with_the_log(blender, engine_cli, tmp_path):
    bpy = blender
    movie = tmp_path / "fake.mp4"
    movie.write_bytes(b"\x00" * 4000)                       # Blender makes a strip; the engine cannot decode it
    scene = bpy.context.scene
    strip = scene.sequence_editor_create().strips.new_movie("fake", str(movie), channel=1, frame_start=1)
    settings = configure_fast(bpy)
    before = sorted(o.name for o in bpy.data.objects)
    with pytest.raises(RuntimeError, match="DynaSketch failed: ") as failure:
        bpy.ops.dynasketch.sketch(strip=strip.name)
    assert "\n" not in str(failure.value).strip()
    assert settings.failed and settings.status.startswith("DynaSketch failed:") and not settings.running
    assert "not a readable video" in settings.status
    assert f"(log: {settings.log_path})" in settings.status and open(settings.log_path).read()
    assert sorted(o.name for o in bpy.data.objects) == before and not bpy.data.collections


def test_a_full_work_folder_is_one_line_and_sketch_again_finishes(blender, prefs, engine_cli, disc_movie,
                                                                   small_disk):
    """The Work Folder's disk fills up: one line with the engine's advice in Blender's words;
    once there is room, Sketch again finishes (the engine's resume is tested in test_cli.py)."""
    bpy = blender
    disk, grow = small_disk
    prefs.work_dir = str(disk)
    clip = bpy.data.movieclips.load(disc_movie)
    settings = configure_fast(bpy)
    with pytest.raises(RuntimeError) as failure:
        bpy.ops.dynasketch.sketch(clip=clip.name)
    assert "No space left on device; free some space, then Sketch again to resume (log: " in str(failure.value)
    assert settings.failed and not sketch_objects(bpy)
    grow(4 << 20)
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, settings.status
    assert keyframes(sketch_objects(bpy)[0])[-1].frame_number == 10


def test_missing_engine_builds_nothing(blender, disc_movie, tmp_path, monkeypatch):
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    monkeypatch.setenv("DYNASKETCH_PYTHON", str(tmp_path / "no-such-python"))
    configure_fast(bpy)
    with pytest.raises(RuntimeError, match="engine interpreter not found"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    assert not bpy.data.objects and not bpy.data.collections


def fake_engine(tmp_path, monkeypatch, body: str):
    """``helpers.fake_engine`` that first writes a log and says ``start``."""
    helpers.fake_engine(tmp_path, monkeypatch, body, preamble=(
        "log = os.path.join(out, 'dynasketch.log'); open(log, 'w').write('log')\n"
        "say(event='start', stage='decode', done=0, total=10, message='x', log=log)\n"))


def test_engine_crash_half_way_keeps_the_previous_result(blender, disc_movie, tmp_path, monkeypatch):
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    write_sketch(tmp_path / "old.json", width=128, height=96, source=disc_movie)
    bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "old.json"))
    before = sorted(o.name for o in bpy.data.objects)
    fake_engine(tmp_path, monkeypatch,
                "say(event='progress', stage='optimise', done=3, total=10, message='frame 3')\n"
                "json.dump({'format': 'dynasketch.sketch', 'version': 1, 'complete': False}, "
                "open(os.path.join(out, 'sketch.json'), 'w'))\n"
                "sys.stderr.write('Segmentation fault\\n'); sys.stderr.flush(); os.kill(os.getpid(), signal.SIGSEGV)\n")
    settings = configure_fast(bpy)
    with pytest.raises(RuntimeError, match=r"DynaSketch failed: the engine crashed \(signal 11\): "
                                           r"Segmentation fault \(log: .*dynasketch.log\)"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    assert sorted(o.name for o in bpy.data.objects) == before          # the old sketch is still there
    assert len(keyframes(sketch_objects(bpy)[0])[0].drawing.strokes) == 3
    assert settings.failed and "dynasketch.log" in settings.log_path


def test_engine_exit_0_with_an_incomplete_sketch_is_an_error(blender, disc_movie, tmp_path, monkeypatch):
    bpy = blender
    clip = bpy.data.movieclips.load(disc_movie)
    doc = write_sketch(tmp_path / "partial.json", width=128, height=96)
    doc["complete"] = False
    fake_engine(tmp_path, monkeypatch, f"open(os.path.join(out, 'sketch.json'), 'w').write({json.dumps(json.dumps(doc))})\n"
                                       "say(event='done', stage='export', done=10, total=10, message='ok', "
                                       "sketch=os.path.join(out, 'sketch.json'))\n")
    configure_fast(bpy)
    with pytest.raises(RuntimeError, match="marked incomplete"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    assert not bpy.data.objects


def start_a_long_job(bpy, tmp_path):
    """A 40-frame job through the step functions, once the engine is sketching."""
    from dynasketch_blender import operators, sketch_job, source

    frames, _ = moving_disc(t_len=40)
    clip = bpy.data.movieclips.load(write_video(str(tmp_path / "long.mp4"), frames))
    settings = bpy.context.scene.dynasketch
    settings.preset, settings.strokes, settings.mask_mode, settings.device = "default", 8, "none", "cpu"
    src = source.from_clip(clip)
    job = sketch_job.SketchJob(operators.engine_command(bpy.context), src, operators.job_options(settings, src),
                               work_dir=operators.work_folder(bpy.context))
    job.start()
    deadline = time.monotonic() + 120
    while job.step() == sketch_job.RUNNING and not any(s in job.message for s in ("initialise", "optimise")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job.state == sketch_job.RUNNING, job.error
    return job, src


def test_cancel_stops_the_engine_within_a_second(blender, engine_cli, tmp_path):
    bpy = blender
    from dynasketch_blender import sketch_job

    job, _ = start_a_long_job(bpy, tmp_path)
    asked = time.monotonic()
    job.cancel()
    assert time.monotonic() - asked < 1.0 + 1.0          # SIGKILL after a second bounds it
    # SIGTERM first (the engine then exits 130); killed if it has not stopped after a second
    assert job.state == sketch_job.CANCELLED and job.process.returncode() in (130, -9)
    assert job.process.process.stdout.closed and job.process.process.stderr.closed
    assert not sketch_objects(bpy) and not bpy.data.collections


def test_blender_ending_a_running_sketch_stops_the_engine(blender, engine_cli, tmp_path):
    """Opening another file or closing the window ends a modal operator through its cancel()
    (no event reaches modal()): the engine stops, keeping its finished frames, rather than
    sketch on for nobody while holding the job folder that the next Sketch resumes in."""
    bpy = blender
    from dynasketch_blender import job_folders, operators, sketch_job

    class Sketch(operators.EngineJobOperator):          # the operator's methods, without Blender's UI
        _ended = operators.DYNASKETCH_OT_sketch._ended

    job, _ = start_a_long_job(bpy, tmp_path)
    op = Sketch()
    op._job, op._scene_name = job, bpy.context.scene.name
    asked = time.monotonic()
    op.cancel(bpy.context)
    assert time.monotonic() - asked < 1.0 + 1.0
    assert job.state == sketch_job.CANCELLED and job.process.returncode() in (130, -9)
    assert not job_folders.in_use(job.out)


def test_a_second_blender_on_the_same_job_is_told_and_the_first_goes_on(blender, engine_cli, tmp_path):
    """The same clip and settings sketched from a second Blender (or a second job started in
    this one) would share the job folder: the engine refuses the second with one line."""
    bpy = blender
    from dynasketch_blender import operators, sketch_job

    job, src = start_a_long_job(bpy, tmp_path)
    try:
        options = operators.job_options(bpy.context.scene.dynasketch, src)
        second = sketch_job.SketchJob(operators.engine_command(bpy.context), src, options,
                                      work_dir=operators.work_folder(bpy.context))
        assert second.out == job.out
        second.start()
        deadline = time.monotonic() + 60
        while second.step() == sketch_job.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert second.state == sketch_job.FAILED
        assert (f"another dynasketch run (process {job.process.process.pid}) is writing there; wait for it "
                "to finish or stop it, or choose another folder") in second.error
        assert job.step() == sketch_job.RUNNING                         # the first is unharmed
    finally:
        job.cancel()
    assert job.state == sketch_job.CANCELLED


def test_cancel_operator_stops_a_blocking_sketch(blender, tmp_path, monkeypatch, disc_movie):
    """Cancel (the panel button) marks the scene; the next step stops the engine."""
    bpy = blender
    from dynasketch_blender import operators

    fake_engine(tmp_path, monkeypatch,
                "signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))\n"
                "for i in range(600):\n"
                "    say(event='progress', stage='optimise', done=i, total=600, message=f'frame {i}')\n"
                "    time.sleep(0.05)\n")
    clip = bpy.data.movieclips.load(disc_movie)
    configure_fast(bpy)
    real_sleep = time.sleep
    ticks = []

    def tick(seconds):
        ticks.append(1)
        if len(ticks) == 10:
            bpy.ops.dynasketch.cancel()
        real_sleep(seconds)

    monkeypatch.setattr(operators.time, "sleep", tick)
    started = time.monotonic()
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"CANCELLED"}
    assert time.monotonic() - started < 5
    settings = bpy.context.scene.dynasketch
    assert settings.status.startswith("Cancelled") and not settings.running and not bpy.data.objects
