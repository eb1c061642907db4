"""Which frames a movie clip or strip shows and where they play; finding the engine; the
progress bar. No engine run here."""
import os
import sys

import pytest
from media import write_sketch


def test_clip_frames_follow_frame_start_and_offset(blender, disc_movie):
    bpy = blender
    from dynasketch_blender import source

    clip = bpy.data.movieclips.load(disc_movie)
    clip.frame_start, clip.frame_offset = 10, 3
    src = source.from_clip(clip)
    assert src.default_range == (3, 10)
    assert src.scene_frame_of(3) == 10 and src.scene_range() == (10, 16)
    assert src.source_range(12, 100) == (5, 10)
    with pytest.raises(source.SourceError, match="lie outside"):
        src.source_range(30, 40)


def test_strip_frames_honour_trims_hold_offsets_and_reverse(blender, disc_movie):
    bpy = blender
    from dynasketch_blender import source

    scene = bpy.context.scene
    strip = scene.sequence_editor_create().strips.new_movie("disc", disc_movie, channel=1, frame_start=5)
    strip.frame_offset_start, strip.frame_offset_end = 2, 3
    src = source.from_strip(strip, scene)
    assert src.default_range == (2, 7)                         # shows source frames 2..6
    assert [src.scene_frame_of(i) for i in (2, 6)] == [7, 11]
    assert src.scene_range() == (strip.frame_final_start, strip.frame_final_end - 1)
    strip.animation_offset_start = 1                           # the content starts at source frame 1
    src = source.from_strip(strip, scene)
    assert src.scene_frame_of(1) == 5 and src.default_range == (3, 7)
    assert src.scene_range() == (strip.frame_final_start, strip.frame_final_end - 1)
    strip.animation_offset_start = 0
    strip.use_reverse_frames = True
    src = source.from_strip(strip, scene)
    assert src.scene_frame_of(9) == 5 and src.scene_frame_of(0) == 14
    assert src.default_range == (3, 8) and src.scene_range() == (7, 11)   # the same scene frames
    assert src.source_range(8, 9) == (5, 7)


def test_a_strip_skipping_pictures_keys_each_sketched_frame_where_its_picture_or_the_next_plays(blender):
    """A strip playing at its movie's own rate shows some source frames for two scene frames
    and none for others: with every other frame sketched, each drawing is keyed where its
    picture (or, skipped, the next one) first plays, and is seen up to where its picture last does."""
    from dynasketch_blender.source import Source

    forward = Source("k", "take", "", "Scene", 10, (0, 8), playback=(0, 0, 1, 3, 3, 4, 6, 7))
    assert forward.keyframes([0, 2, 4, 6]) == {10: 0, 13: 2, 15: 4, 16: 6}
    assert forward.drawn_span([0, 2, 4, 6]) == (10, 16) and forward.drawn_span([0, 3]) == (10, 14)
    assert forward.source_range(12, 14) == (1, 4) and forward.scene_range() == (10, 17)
    backward = Source("k", "take", "", "Scene", 10, (0, 8), reversed=True, playback=(7, 6, 6, 4, 3, 1, 0))
    assert backward.keyframes([7, 5, 3, 1]) == {10: 7, 13: 5, 14: 3, 15: 1}
    assert backward.keyframes([6, 5, 4]) == {11: 6, 13: 4}           # 5 is never shown, 4 is
    assert backward.drawn_span([6, 4]) == (11, 13) and backward.scene_frame_of(0) == 16
    # frames 0-7 sketched every other frame (0, 2, 4, 6): the range is seen to its end, 7
    assert forward.drawn_span([0, 2, 4, 6], through=7) == (10, 17)
    assert backward.drawn_span([0, 2, 4, 6], through=7) == (10, 16)          # 7 plays first here
    assert Source("k", "t", "", "S", 20, (0, 8), reversed=True).drawn_span([0, 2, 4, 6], through=7) == (13, 20)


def test_a_strip_dragged_past_its_footage_sketches_all_of_it(blender, disc_movie):
    """Handles dragged past the movie's ends hold its first and last frames there; the
    frames to sketch are the movie's own (the engine has no frame -3 or 12)."""
    bpy = blender
    from dynasketch_blender import source

    scene = bpy.context.scene
    strip = scene.sequence_editor_create().strips.new_movie("disc", disc_movie, channel=1, frame_start=5)
    strip.frame_final_start, strip.frame_final_end = 2, 20
    assert (strip.frame_offset_start, strip.frame_offset_end) == (-3, -5)
    src = source.from_strip(strip, scene)
    assert src.default_range == (0, 10) and src.scene_range() == (5, 14)
    strip.use_reverse_frames = True
    assert source.from_strip(strip, scene).default_range == (0, 10)


def save_images(folder, numbers, name="shot_{:04d}.png"):
    from PIL import Image

    folder.mkdir(exist_ok=True)
    for n in numbers:
        Image.new("RGB", (32, 24), (10 * n, 0, 0)).save(folder / name.format(n))
    return [str(folder / name.format(n)) for n in numbers]


def test_an_image_sequence_clip_starts_at_its_chosen_image(blender, tmp_path):
    bpy = blender
    from dynasketch_blender import source

    files = save_images(tmp_path / "50% done", [1, 2, 3, 4, 5, 6, 8], name="v2 100%_{:03d}.png")
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.001
    clip = bpy.data.movieclips.load(files[2])                          # number 3
    clip.frame_start, clip.frame_offset = 10, 1
    src = source.from_clip(clip, scene)
    assert src.default_range == (1, 4)                                 # images 4, 5, 6: 7 is missing
    assert src.scene_frame_of(1) == 10
    pattern = str(tmp_path / "50% done" / "v2 100%%_%03d.png")         # the name's % doubled, not the folder's
    assert src.engine_input() == [pattern, "--start-number", "3", "--fps", f"{30 / 1.001:g}",
                                  "--colorspace", "sRGB", "--ocio-config", source.ocio_config()]
    assert os.path.isfile(source.ocio_config())                        # Blender's own
    assert src.files() == files[3:6]
    assert src.footage_kind() == "SEQUENCE" and src.footage_pictures() == (10, [4, 5, 6])


def test_image_strips_are_sketched_when_their_images_are_one_numbered_sequence(blender, tmp_path):
    bpy = blender
    from dynasketch_blender import source

    files = save_images(tmp_path / "shot", range(7, 13))
    scene = bpy.context.scene
    strips = scene.sequence_editor_create().strips
    strip = strips.new_image("shot", files[1], channel=1, frame_start=20)
    for path in files[2:5]:
        strip.elements.append(os.path.basename(path))                 # images 8..11
    strip.frame_offset_start = 1
    src = source.from_strip(strip, scene)
    assert src.engine_input()[:3] == [str(tmp_path / "shot" / "shot_%04d.png"), "--start-number", "8"]
    assert src.default_range == (1, 4) and src.scene_frame_of(1) == 21
    assert src.files() == files[2:5]
    still = strips.new_image("still", files[0], channel=2, frame_start=1)
    still.frame_final_duration = 30                                    # one image held for 30 frames
    src = source.from_strip(still, scene)
    assert src.default_range == (0, 1) and src.engine_input()[:3] == [str(tmp_path / "shot" / "shot_%04d.png"),
                                                                       "--start-number", "7"]
    picked = strips.new_image("picked", files[0], channel=3, frame_start=1)
    picked.elements.append(os.path.basename(files[3]))                 # images 7 and 10
    with pytest.raises(source.SourceError, match="not one numbered sequence"):
        source.from_strip(picked, scene)
    os.remove(files[3])
    with pytest.raises(source.SourceError, match="the image is missing .*shot_0010.png"):
        source.from_strip(strip, scene)


def test_a_mask_image_is_read_as_a_movie_clip_opened_from_it(blender, tmp_path):
    """Mask File: a numbered image with more after it is a mask sequence from that image on
    (the engine's --mask-start-number); an image on its own is a still mask; a movie is itself."""
    bpy = blender
    from dynasketch_blender import source

    run = save_images(tmp_path / "roto", [997, 998, 1001, 1002, 1003, 1005], name="matte.{}.png")
    assert source.mask_input(run[2]) == (["--mask", str(tmp_path / "roto" / "matte.%04d.png"),
                                          "--mask-start-number", "1001"], run[2:5])
    for still in (run[-1], *save_images(tmp_path, [1], name="garbage matte.png")):
        assert source.mask_input(still) == (["--mask", still], [still])
    assert source.mask_input(str(tmp_path / "roto")) == (["--mask", str(tmp_path / "roto")], [str(tmp_path / "roto")])


def test_a_stabilised_clip_strip_is_refused_with_what_to_do(blender, disc_movie):
    """The engine sketches the footage as filmed: a clip strip showing the clip 2D-stabilised
    or undistorted would not match its sketch, so it is refused in one line."""
    bpy = blender
    from dynasketch_blender import source

    scene = bpy.context.scene
    strip = scene.sequence_editor_create().strips.new_clip("tracked", bpy.data.movieclips.load(disc_movie), 1, 1)
    assert source.from_strip(strip, scene).default_range == (0, 10)
    for flag in ("stabilize2d", "undistort"):
        setattr(strip, flag, True)
        with pytest.raises(source.SourceError, match="tracked: turn off 2D Stabilized and Undistorted"):
            source.from_strip(strip, scene)
        setattr(strip, flag, False)


def test_sequencer_scene_comes_before_the_window_scene(blender):
    from types import SimpleNamespace

    from dynasketch_blender import source

    seq, win = object(), object()
    editor = SimpleNamespace(space_data=SimpleNamespace(type="SEQUENCE_EDITOR"), sequencer_scene=seq, scene=win)
    assert source.sequencer_scene(editor) is seq and source.settings_scene(editor) is seq
    old = SimpleNamespace(space_data=SimpleNamespace(type="SEQUENCE_EDITOR"), scene=win)   # Blender 4.5
    assert source.sequencer_scene(old) is win
    clip_editor = SimpleNamespace(space_data=SimpleNamespace(type="CLIP_EDITOR"), sequencer_scene=seq, scene=win)
    assert source.settings_scene(clip_editor) is win


def test_unreadable_and_missing_clips_are_clear_errors(blender, tmp_path):
    bpy = blender
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a movie" * 100)
    clip = bpy.data.movieclips.load(str(bad))
    with pytest.raises(RuntimeError, match="Blender cannot read any frame of .*broken.mp4"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    clip.filepath = str(tmp_path / "gone.mp4")
    with pytest.raises(RuntimeError, match="the movie file is missing"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    with pytest.raises(RuntimeError, match="no movie clip named 'nope'"):
        bpy.ops.dynasketch.sketch(clip="nope")
    with pytest.raises(RuntimeError, match="nothing to sketch"):
        bpy.ops.dynasketch.sketch()
    assert bpy.context.scene.dynasketch.failed and not bpy.data.objects


def test_a_linked_scene_is_refused_with_what_to_do_and_left_as_it_was(blender, disc_movie, tmp_path):
    """An edit linked from another .blend file: what Sketch or Import would add to it is not
    saved with this file (an hour's sketch lost on the next save), so both say where to work
    instead, before the engine runs, and add nothing. The strip's //path is the library's."""
    bpy = blender
    import shutil

    (tmp_path / "library").mkdir(), (tmp_path / "shot").mkdir()
    shutil.copy(disc_movie, tmp_path / "library" / "plate.mp4")
    edit = bpy.context.scene
    edit.name, edit.use_fake_user = "Edit", True
    edit.sequence_editor_create().strips.new_movie("plate", str(tmp_path / "library" / "plate.mp4"), 1, 1)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "library" / "edit.blend"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot" / "shot.blend"))
    with bpy.data.libraries.load(str(tmp_path / "library" / "edit.blend"), link=True, relative=True) as (src, dst):
        dst.scenes = ["Edit"]
    edit = bpy.data.scenes["Edit"]
    assert edit.library is not None and edit.sequence_editor.strips["plate"].filepath == "//plate.mp4"
    before = {name: len(getattr(bpy.data, name)) for name in ("scenes", "objects", "collections", "images")}
    library = str(tmp_path / "library" / "edit.blend")
    with bpy.context.temp_override(scene=edit):
        with pytest.raises(RuntimeError, match=f"DynaSketch: scene Edit is linked from {library}: work in "
                                               "that file, or make the scene local .Outliner: ID Data > Make Local"):
            bpy.ops.dynasketch.sketch(strip="plate")
        write_sketch(tmp_path / "sketch.json", width=128, height=96)
        with pytest.raises(RuntimeError, match="scene Edit is linked from"):
            bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "sketch.json"))
    assert {name: len(getattr(bpy.data, name)) for name in before} == before
    assert [s.name for s in edit.sequence_editor.strips] == ["plate"]


def test_engine_is_found_in_the_documented_order(tmp_path, monkeypatch):
    from dynasketch_blender import engine_process as ep

    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    script = tmp_path / "bin" / "dynasketch"
    script.parent.mkdir()
    script.write_text(f"#!{python}\nimport engine.cli\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(script.parent))
    monkeypatch.delenv("DYNASKETCH_PYTHON", raising=False)
    monkeypatch.setattr(ep, "ADDON_SOURCE_ROOT", str(tmp_path / "nowhere"))
    found = ep.find_engine()
    assert found.prefix == (str(python), str(script)) and found.found_by == "PATH"
    script.write_text("#!/usr/bin/env python3\n")                # no absolute interpreter: run the script
    assert ep.find_engine().prefix == (str(script),)
    monkeypatch.setenv("DYNASKETCH_PYTHON", sys.executable)
    assert ep.find_engine().prefix == (sys.executable, "-m", "engine")
    assert ep.find_engine(str(python)).found_by == "preferences"
    with pytest.raises(ep.EngineNotFound, match="fix it in the add-on preferences"):
        ep.find_engine(str(tmp_path / "missing-python"))
    monkeypatch.delenv("DYNASKETCH_PYTHON")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ep.EngineNotFound, match="Preferences > Add-ons > DynaSketch"):
        ep.find_engine()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.setattr(ep, "ADDON_SOURCE_ROOT", root)                # run from the source tree
    found = ep.find_engine()
    assert found.found_by == "project .venv" and found.prefix[0].startswith(os.path.join(root, ".venv"))


def test_engine_environment_drops_blenders_python_settings(monkeypatch):
    from dynasketch_blender.engine_process import engine_environment

    monkeypatch.setenv("PYTHONHOME", "/blender/python")
    monkeypatch.setenv("PYTHONPATH", "/blender/scripts")
    env = engine_environment({"DYNASKETCH_HOME": "/models"})
    assert "PYTHONHOME" not in env and "PYTHONPATH" not in env
    assert env["DYNASKETCH_HOME"] == "/models" and env["PYTHONUNBUFFERED"] == "1"


def test_progress_bar_fills_through_the_stages():
    from dynasketch_blender.sketch_job import overall_progress

    values = [overall_progress("decode", 0, 10), overall_progress("track", 5, 10),
              overall_progress("optimise", 0, 10), overall_progress("optimise", 10, 10),
              overall_progress("export", 10, 10)]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == pytest.approx(1.0)
    assert overall_progress("mask", 0, 0) == pytest.approx(0.05)
    assert overall_progress("some-new-stage", 1, 2) is None


def test_check_engine_reports_when_there_is_none(blender, monkeypatch, tmp_path):
    bpy = blender
    monkeypatch.setenv("DYNASKETCH_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(RuntimeError, match="engine interpreter not found"):
        bpy.ops.dynasketch.check_engine()
