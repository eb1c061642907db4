"""The Subject setting: Box (a tracking marker's search area, one box per keyframed marker,
on its source frame), Blender Mask (a Mask datablock rendered per frame through the
compositor, white where its shapes are, in the clip's frame numbering), the engine's
warnings in the panel, and saved files keeping their setting. Real bpy; the engine where its
command line works."""
import json
import os

import numpy as np
import pytest
from helpers import draw_panel as draw
from helpers import fake_engine, sketch_objects
from media import moving_disc, write_video

W, H = 128, 96                       # the disc movie's size


def pixels(path):
    from PIL import Image

    return np.asarray(Image.open(path).convert("L"), dtype=np.float64)


def add_track(clip, name, keys, search=((-0.1, -0.2), (0.15, 0.25))):
    """A track with a marker keyed on each clip frame of ``keys`` ({frame: co})."""
    track = clip.tracking.tracks.new(name=name, frame=min(keys))
    for frame, co in keys.items():
        marker = track.markers.insert_frame(frame, co=co)
        marker.search_min, marker.search_max = search
    return track


def mask_co(x, y, size=(W, H)):
    """Blender's mask space of pixel (x, y), y down (BKE_mask_coord_from_frame): x across the
    width, y up, scaled by the aspect around the centre so that units are square."""
    w, h = size
    u, v = x / w, 1.0 - y / h
    return (u, (v - 0.5) * h / w + 0.5) if w > h else ((u - 0.5) * w / h + 0.5, v)


def square_mask(bpy, corners, name="Subject", parent=None):
    """A Mask with one layer and one closed straight-edged shape through ``corners`` (pixels,
    y down); ``parent``: (clip, track name) that its points follow."""
    mask = bpy.data.masks.new(name)
    layer = mask.layers.new(name="Outline")
    spline = layer.splines.new()
    spline.points.add(len(corners) - 1)
    for point, (x, y) in zip(spline.points, corners):
        point.co = mask_co(x, y)
        point.handle_left_type = point.handle_right_type = "VECTOR"
        if parent is not None:
            clip, track = parent
            point.parent.id_type, point.parent.id = "MOVIECLIP", clip
            point.parent.parent, point.parent.sub_parent = clip.tracking.objects[0].name, track
            point.parent.type = "POINT_TRACK"
    return mask


# -- Box ---------------------------------------------------------------------------------------
def test_a_search_area_is_a_box_in_source_pixels_with_y_down():
    from dynasketch_blender.subject import search_box

    # marker at 1/4 across, 3/4 up a 200x100 frame; search area 0.05 left, 0.1 right, 0.1 below, 0.2 above
    assert search_box((0.25, 0.75), (-0.05, -0.1), (0.1, 0.2), (200, 100)) == (40, 5, 30, 30)
    assert search_box((0.5, 0.5), (-0.25, -0.25), (0.25, 0.25), (200, 100)) == (50, 25, 100, 50)
    assert search_box((0.95, 0.1), (-0.1, -0.2), (0.2, 0.2), (200, 100)) == (170, 70, 30, 30)   # cut to the frame
    assert search_box((1.5, 0.5), (-0.1, -0.1), (0.1, 0.1), (200, 100)) is None                  # outside it


def test_box_sends_each_keyframed_marker_on_its_source_frame(blender, disc_movie):
    """Markers keyed on clip frames 1, 3, 7 (5 disabled, 6 only tracked) of a clip that
    starts at scene frame 5 with a frame offset of 2: boxes on source frames 2, 4 and 8, the
    search area's pixels, y down; only those in the frames sketched."""
    bpy = blender
    from dynasketch_blender import operators, source, subject

    clip = bpy.data.movieclips.load(disc_movie)
    clip.frame_start, clip.frame_offset = 5, 2
    track = add_track(clip, "Disc", {1: (0.3, 0.5), 3: (0.3, 0.5), 5: (0.3, 0.5), 7: (0.4, 0.6)})
    track.markers.find_frame(5).mute = True
    track.markers.insert_frame(6, co=(0.3, 0.5)).is_keyed = False
    settings = bpy.context.scene.dynasketch
    settings.mask_mode, settings.subject_track = "box", "Disc"
    src = source.from_clip(clip, bpy.context.scene)
    # (0.3 - 0.1) * 128 = 25.6 .. (0.3 + 0.15) * 128 = 57.6; (1 - 0.75) * 96 = 24 .. (1 - 0.3) * 96 = 67.2
    assert operators.job_options(settings, src)["mask"] == [
        "--mask", "auto", "--subject", "25,24,33,44@2", "--subject", "25,24,33,44@4",
        "--subject", "38,14,33,44@8"]
    for box, marker_frame in zip(subject.track_boxes(clip, track), (1, 3, 7)):
        # the scene frame where the clip shows the box's source frame is the marker's
        assert src.scene_frame_of(box.index) == clip.frame_start + marker_frame - 1

    settings.use_source_range, settings.frame_start, settings.frame_end = False, 8, 10    # source 5..7
    with pytest.raises(source.SourceError) as refused:
        operators.job_options(settings, src)
    assert str(refused.value) == ("Box: track Disc has no keyframed marker in the frames sketched (8-10; "
                                  "its keys are on frames 5, 7, 11): key one there")
    settings.frame_end = 12                                                                # source 5..9
    assert operators.job_options(settings, src)["mask"][2:] == ["--subject", "38,14,33,44@8"]

    settings.subject_track = ""                         # the clip's active track
    clip.tracking.tracks.active = track
    assert subject.describe_box(settings, panel_context(bpy, clip)) == "Disc: 3 keys, frame 5: 25,24 33x44"


def panel_context(bpy, clip):
    from types import SimpleNamespace

    return SimpleNamespace(scene=bpy.context.scene, space_data=SimpleNamespace(type="CLIP_EDITOR", clip=clip))


def test_a_box_that_cannot_be_had_is_one_line(blender, disc_movie):
    bpy = blender
    from dynasketch_blender import operators, source

    clip = bpy.data.movieclips.load(disc_movie)
    settings = bpy.context.scene.dynasketch
    settings.mask_mode = "box"
    src = source.from_clip(clip, bpy.context.scene)
    with pytest.raises(source.SourceError, match=r"^Box: choose a track of disc.mp4 whose search area frames "
                                                 r"the subject \(Clip Editor: Ctrl\+click adds a marker"):
        operators.job_options(settings, src)
    settings.subject_track = "Nope"
    with pytest.raises(source.SourceError, match=r"^Box: disc.mp4 has no track named 'Nope': choose one"):
        operators.job_options(settings, src)
    track = add_track(clip, "Off", {1: (0.5, 0.5)})
    track.markers[0].mute = True                                          # its only marker disabled
    settings.subject_track = track.name
    with pytest.raises(source.SourceError, match="^Box: track Off has no keyframed, enabled marker"):
        operators.job_options(settings, src)
    # a strip whose movie is not open as a clip has no tracks to draw a box with
    edit = bpy.data.scenes.new("Edit")
    strip = edit.sequence_editor_create().strips.new_movie("take", disc_movie, channel=1, frame_start=1)
    bpy.data.movieclips.remove(clip)
    edit.dynasketch.mask_mode = "box"
    with pytest.raises(source.SourceError, match="^Box needs the footage as a movie clip: open it in the Clip"):
        operators.job_options(edit.dynasketch, source.from_strip(strip, edit))


def test_a_strips_box_comes_from_its_movie_open_as_a_clip(blender, disc_movie):
    bpy = blender
    from dynasketch_blender import operators, source

    edit = bpy.data.scenes.new("Edit")
    strip = edit.sequence_editor_create().strips.new_movie("take", disc_movie, channel=1, frame_start=20)
    clip = bpy.data.movieclips.load(disc_movie)
    add_track(clip, "Disc", {4: (0.3, 0.5)})
    edit.dynasketch.mask_mode, edit.dynasketch.subject_track = "box", "Disc"
    assert operators.job_options(edit.dynasketch, source.from_strip(strip, edit))["mask"][2:] == [
        "--subject", "25,24,33,44@3"]


def test_the_subject_setting_reads_files_saved_before_box_and_blender_mask(blender, tmp_path):
    """A .blend file stores an enum's number: a file saved when the Mask setting had Auto (0),
    None (1) and Mask File (2) reads as the same Subject."""
    bpy = blender
    settings = bpy.context.scene.dynasketch
    items = settings.bl_rna.properties["mask_mode"].enum_items
    assert [item.identifier for item in items] == ["auto", "box", "blender_mask", "file", "none"]
    for stored, mode in ((0, "auto"), (1, "none"), (2, "file")):
        settings["mask_mode"] = stored                                  # what the old file holds
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "old.blend"))
        bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "old.blend"))
        settings = bpy.context.scene.dynasketch
        assert settings.mask_mode == mode


# -- Blender Mask ------------------------------------------------------------------------------
def user_state(bpy):
    scene = bpy.context.scene
    r = scene.render
    return (sorted(s.name for s in bpy.data.scenes), sorted(g.name for g in bpy.data.node_groups),
            sorted(i.name for i in bpy.data.images), scene.frame_current, scene.frame_start, scene.frame_end,
            r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath, r.use_compositing,
            r.image_settings.file_format, scene.view_settings.view_transform,
            getattr(scene, "compositing_node_group", None))


def test_a_blender_mask_is_white_where_its_shape_is_in_every_image(blender, disc_movie, tmp_path):
    """A shape drawn over pixels (20..60, 30..70) of the 128x96 clip: white there, black
    elsewhere, not flipped or stretched; images from 0 on, those before the frames sketched
    blank; nothing of the user's scene changed."""
    bpy = blender
    from dynasketch_blender import operators, source

    clip = bpy.data.movieclips.load(disc_movie)
    settings = bpy.context.scene.dynasketch
    settings.mask_mode = "blender_mask"
    settings.subject_mask = square_mask(bpy, [(20, 30), (60, 30), (60, 70), (20, 70)])
    settings.use_source_range, settings.frame_start, settings.frame_end = False, 4, 8        # source 3..7
    before = user_state(bpy)
    options = operators.job_options(settings, source.from_clip(clip), work_dir=str(tmp_path))
    assert user_state(bpy) == before
    raster = options["mask_raster"]
    assert options["mask"] == ["--mask", f"blender-mask:{raster.digest}"]
    names = sorted(n for n in os.listdir(raster.staging) if n.endswith(".png"))
    assert names == [f"mask_{i:06d}.png" for i in range(8)]
    for i in range(3):
        assert pixels(os.path.join(raster.staging, names[i])).max() == 0                   # before the range
    for i in range(3, 8):
        image = pixels(os.path.join(raster.staging, names[i]))
        assert image.shape == (H, W)
        assert image[31:69, 21:59].min() == 255                                          # inside
        assert image[:, :19].max() == 0 and image[:, 62:].max() == 0                      # left and right
        assert image[:28].max() == 0 and image[72:].max() == 0                            # above and below
        assert abs(image.sum() / 255 - 40 * 40) < 80


def test_a_mask_parented_to_a_track_follows_it_frame_by_frame(blender, disc_movie, tmp_path):
    """The shape's points follow a track whose marker moves right and up and down by a known
    step each clip frame. The clip starts at scene frame 3 with a frame offset of 1: image i (source
    frame i) shows the shape where the marker is on clip frame i, so from image to image it
    moves as the marker does, in pixels with y down."""
    bpy = blender
    from dynasketch_blender import operators, source

    clip = bpy.data.movieclips.load(disc_movie)
    clip.frame_start, clip.frame_offset = 3, 1
    marker = {f: (0.3 + 0.004 * f * f, 0.4 + 0.03 * (f % 3)) for f in range(1, 11)}   # no two steps alike
    add_track(clip, "Disc", marker)
    settings = bpy.context.scene.dynasketch
    settings.mask_mode = "blender_mask"
    settings.subject_mask = square_mask(bpy, [(10, 40), (30, 40), (30, 60), (10, 60)], parent=(clip, "Disc"))
    src = source.from_clip(clip)
    assert src.default_range == (1, 10)
    raster = operators.job_options(settings, src, work_dir=str(tmp_path))["mask_raster"]

    def centre(i):
        image = pixels(os.path.join(raster.staging, f"mask_{i:06d}.png")) / 255
        ys, xs = np.mgrid[0:H, 0:W]
        assert 380 < image.sum() < 450, i                            # the whole 20 x 20 square, in the frame
        return (image * xs).sum() / image.sum(), (image * ys).sum() / image.sum()

    assert pixels(os.path.join(raster.staging, "mask_000000.png")).max() == 0
    x1, y1 = centre(1)
    for i in range(2, 10):
        x, y = centre(i)
        expected = ((marker[i][0] - marker[1][0]) * W, -(marker[i][1] - marker[1][1]) * H)
        assert (x - x1, y - y1) == pytest.approx(expected, abs=0.3), i


def test_a_mask_with_nothing_to_render_is_one_line(blender, disc_movie, tmp_path):
    bpy = blender
    from dynasketch_blender import operators, source

    clip = bpy.data.movieclips.load(disc_movie)
    settings = bpy.context.scene.dynasketch
    settings.mask_mode = "blender_mask"
    src = source.from_clip(clip)
    with pytest.raises(source.SourceError, match=r"^Blender Mask: choose a Mask under Subject"):
        operators.job_options(settings, src, work_dir=str(tmp_path))
    empty = bpy.data.masks.new("Empty")
    empty.layers.new(name="Outline")
    settings.subject_mask = empty
    with pytest.raises(source.SourceError) as refused:
        operators.job_options(settings, src, work_dir=str(tmp_path))
    assert str(refused.value) == ("Blender Mask: Empty has no shape to render: draw the subject's outline in "
                                  "the Clip Editor's Mask mode (and show its layer in renders)")
    hidden = square_mask(bpy, [(20, 30), (60, 30), (60, 70)], name="Hidden")
    hidden.layers[0].hide_render = True
    settings.subject_mask = hidden
    with pytest.raises(source.SourceError, match="^Blender Mask: Hidden has no visible layer to render"):
        operators.job_options(settings, src, work_dir=str(tmp_path))
    assert not os.listdir(tmp_path)                                      # nothing rendered, nothing left


def test_the_same_mask_is_the_same_job_and_its_images_stay(blender, disc_movie, tmp_path):
    """Sketch again with the same mask: the same job folder, and the images already there are
    kept as they are (the engine's resume check compares their times); a changed mask is a
    new job."""
    bpy = blender
    from dynasketch_blender import operators, sketch_job, source

    clip = bpy.data.movieclips.load(disc_movie)
    settings = bpy.context.scene.dynasketch
    settings.mask_mode = "blender_mask"
    settings.subject_mask = mask = square_mask(bpy, [(20, 30), (60, 30), (60, 70), (20, 70)])
    src = source.from_clip(clip)

    def job():
        options = operators.job_options(settings, src, work_dir=str(tmp_path))
        return sketch_job.SketchJob(operators.engine_command(bpy.context), src, options, work_dir=str(tmp_path))

    first = job()
    first.mask_raster.place(first.mask_folder)
    image = os.path.join(first.mask_folder, "mask_000004.png")
    stamp = os.stat(image).st_mtime_ns
    assert first.command[first.command.index("--mask") + 1:][:3] == [
        os.path.join(first.out, "subject-mask", "mask_%06d.png"), "--mask-start-number", "0"]
    again = job()
    assert again.out == first.out
    again.mask_raster.place(again.mask_folder)
    assert os.stat(image).st_mtime_ns == stamp and not os.path.exists(again.mask_raster.staging)
    mask.layers[0].splines[0].points[0].co = mask_co(10, 10)
    edited = job()
    assert edited.out != first.out
    # a render whose job never started (Blender ended between) goes after an hour
    from dynasketch_blender import job_folders

    job_folders.remove_stale(str(tmp_path))
    assert os.path.isdir(edited.mask_raster.staging)
    os.utime(edited.mask_raster.staging, (0, 0))
    job_folders.remove_stale(str(tmp_path))
    assert not os.path.exists(edited.mask_raster.staging) and os.path.isdir(first.mask_folder)


# -- the panel and the engine's warnings -------------------------------------------------------
def test_the_panel_shows_the_subject_and_the_engines_warning(blender, disc_movie):
    bpy = blender
    from dynasketch_blender import panels

    clip = bpy.data.movieclips.load(disc_movie)
    add_track(clip, "Disc", {1: (0.3, 0.5), 4: (0.3, 0.5)})
    context = panel_context(bpy, clip)
    settings = bpy.context.scene.dynasketch
    settings.mask_mode, settings.subject_track = "box", "Disc"
    drawn = draw(bpy, panels.DYNASKETCH_PT_clip, context)
    assert ("prop_search", "subject_track", "tracks") in drawn
    assert ("label", "Disc: 2 keys, frame 1: 25,24 33x44") in drawn
    settings.mask_mode = "blender_mask"
    drawn = draw(bpy, panels.DYNASKETCH_PT_clip, context)
    assert ("prop", "subject_mask") in drawn and ("prop_search", "subject_track", "tracks") not in drawn

    warning = "no mask: the whole frame is sketched, background included"
    settings.running, settings.status, settings.warning = True, "optimise: frame 3", warning
    assert ("label", warning) in draw(bpy, panels.DYNASKETCH_PT_clip, context)
    settings.running, settings.status = False, "Sketched 10 frames into disc.mp4 Sketch"
    drawn = draw(bpy, panels.DYNASKETCH_PT_clip, context)
    assert drawn[2:4] == [("label", "Sketched 10 frames into disc.mp4 Sketch"), ("label", warning)]


def test_the_engines_latest_warning_is_kept_and_said_in_blenders_terms(blender, disc_movie, tmp_path, monkeypatch,
                                                                       capfd):
    """The engine's ``warning`` events: the latest is the job's warning (its advice as it is
    followed in Blender), the progress messages go on as before, and a failed run says its
    error with the warning still shown."""
    bpy = blender
    from dynasketch_blender import operators, sketch_job, source

    fake_engine(tmp_path, monkeypatch,
                "say(event='start', stage='decode', done=0, total=10, message='disc.mp4: 10 frames')\n"
                "say(event='warning', stage='decode', done=0, total=10, message='first one')\n"
                "say(event='warning', stage='mask', done=0, total=10, message='no mask: the whole frame is sketched, "
                "background included; run `dynasketch models download isnet-general-use` for masks, or pick the "
                "subject with --subject X,Y,W,H')\n"
                "say(event='progress', stage='optimise', done=3, total=10, message='frame 3/10')\n"
                "sys.stderr.write('dynasketch: error: out of paper\\n'); sys.exit(2)\n")
    clip = bpy.data.movieclips.load(disc_movie)
    settings = bpy.context.scene.dynasketch
    src = source.from_clip(clip)
    job = sketch_job.SketchJob(operators.engine_command(bpy.context), src, operators.job_options(settings, src),
                               work_dir=str(tmp_path))
    job.start()
    while job.step() == sketch_job.RUNNING:
        pass
    assert job.warning == ("no mask: the whole frame is sketched, background included; get isnet-general-use "
                           "with Download Models (add-on preferences) for masks, or pick the subject with "
                           "Subject: Box or Blender Mask")
    assert job.message.startswith("DynaSketch failed: out of paper")

    capfd.readouterr()
    with pytest.raises(RuntimeError, match="out of paper"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    assert settings.failed and settings.warning == job.warning
    reported = capfd.readouterr().out                                  # the Info report, once each
    assert reported.count(f"DynaSketch: {job.warning}") == 1 and reported.count("DynaSketch: first one") <= 1
    settings.mask_mode = "box"                                         # a run that fails before the engine
    with pytest.raises(RuntimeError, match="Box: choose a track"):
        bpy.ops.dynasketch.sketch(clip=clip.name)
    assert settings.warning == ""                                      # the last run's warning is gone


# -- with the engine ---------------------------------------------------------------------------
def configure_fast(bpy, strokes=4):
    s = bpy.context.scene.dynasketch
    s.preset, s.strokes, s.seeds, s.device = "fast", strokes, 1, "cpu"
    return s


def stroke_centres(doc):
    return {f["index"]: np.mean([s["points"] for s in f["strokes"]], axis=(0, 1)) for f in doc["frames"]}


def test_sketch_with_a_box_on_the_disc(blender, prefs, engine_cli, tmp_path):
    """A marker's search area around the disc on its first frame: the engine gets the box and,
    with no masking model in the Model Folder, masks with the followed box and says so; the
    strokes are on the disc and the panel shows the warning."""
    bpy = blender
    prefs.model_dir = str(tmp_path / "no-models")
    frames, _ = moving_disc(t_len=6, speed=6)
    clip = bpy.data.movieclips.load(write_video(str(tmp_path / "disc.mp4"), frames))
    add_track(clip, "Disc", {1: (30 / W, 0.5)}, search=((-26 / W, -26 / H), (26 / W, 26 / H)))
    settings = configure_fast(bpy)
    settings.mask_mode, settings.subject_track = "box", "Disc"
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, settings.status
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert doc["settings"]["subject"] == ["4,22,52,52@0"]
    assert settings.warning.startswith("no masking model: the box around the subject is the mask"), settings.warning
    for index, (x, y) in stroke_centres(doc).items():               # the disc: x = 30 + 6 t, y = 48
        assert abs(x - (30 + 6 * index)) < 14 and abs(y - 48) < 14, (index, x, y)


def test_sketch_with_a_blender_mask_then_again_resumes(blender, engine_cli, tmp_path):
    """A Mask drawn around the disc's path: the engine reads it as the mask file of each frame
    (from the job folder), the strokes lie in it; Sketch again uses the same job and images."""
    bpy = blender
    frames, _ = moving_disc(t_len=6, speed=6)
    clip = bpy.data.movieclips.load(write_video(str(tmp_path / "disc.mp4"), frames))
    settings = configure_fast(bpy)
    settings.mask_mode = "blender_mask"
    settings.subject_mask = square_mask(bpy, [(8, 26), (86, 26), (86, 70), (8, 70)])
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, settings.status
    (obj,) = sketch_objects(bpy)
    doc = json.load(open(obj["dynasketch_sketch"]))
    folder = os.path.join(os.path.dirname(obj["dynasketch_sketch"]), "subject-mask")
    assert doc["settings"]["backends"]["mask"] == "file" and doc["settings"]["mask_start_number"] == 0
    assert sorted(n for n in os.listdir(folder) if n.endswith(".png")) == [f"mask_{i:06d}.png" for i in range(6)]
    for index, (x, y) in stroke_centres(doc).items():
        assert 8 <= x <= 86 and 26 <= y <= 70, (index, x, y)
    stamp, path = os.stat(os.path.join(folder, "mask_000003.png")).st_mtime_ns, obj["dynasketch_sketch"]
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, settings.status
    (again,) = sketch_objects(bpy)
    assert again["dynasketch_sketch"] == path                              # the same job folder
    assert os.stat(os.path.join(folder, "mask_000003.png")).st_mtime_ns == stamp
    assert len(os.listdir(os.path.dirname(os.path.dirname(path)))) == 1    # no other job, no staging left
