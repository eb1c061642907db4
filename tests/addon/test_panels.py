"""What the sidebar panels show (drawn into a recording layout: background mode has no UI):
what Sketch would sketch, the settings, the progress bar with Cancel while a job runs, the
last result or error with its log, in the Clip Editor and in the Sequencer."""
from types import SimpleNamespace

from helpers import RecordingLayout, WithLayout
from helpers import draw_panel as draw


# the Result panel's revision of a result at the current frame (dynasketch_blender/revise.py)
REVISE = [("operator", "dynasketch.resketch_from_here"), ("operator", "dynasketch.delete_stroke_everywhere"),
          ("operator", "dynasketch.lock_strokes")]

def test_the_clip_editor_panel_follows_the_job(blender, disc_movie):
    bpy = blender
    from dynasketch_blender import panels

    clip = bpy.data.movieclips.load(disc_movie)
    clip.frame_start = 5
    context = SimpleNamespace(scene=bpy.context.scene, space_data=SimpleNamespace(type="CLIP_EDITOR", clip=clip))
    settings = bpy.context.scene.dynasketch

    idle = draw(bpy, panels.DYNASKETCH_PT_clip, context)
    assert idle[:2] == [("label", "disc.mp4: frames 5-14"), ("operator", "dynasketch.sketch")]
    assert [name for kind, name, *_ in idle if kind == "prop"] == [
        "strokes", "width", "preset", "use_source_range", "frame_start", "frame_end", "frame_step",
        "mask_mode", "seeds", "device"]
    settings.mask_mode = "file"
    assert ("prop", "mask_path") in draw(bpy, panels.DYNASKETCH_PT_clip, context)

    settings.running, settings.progress, settings.status = True, 0.42, "optimise: frame 7 (3/10)"
    running = draw(bpy, panels.DYNASKETCH_PT_clip, context)
    assert running[:2] == [("progress", 0.42, "optimise: frame 7 (3/10)"), ("operator", "dynasketch.cancel")]
    assert ("operator", "dynasketch.sketch") not in running

    settings.running, settings.failed = False, True
    settings.status, settings.log_path = "DynaSketch failed: the engine crashed", "/tmp/job/dynasketch.log"
    failed = draw(bpy, panels.DYNASKETCH_PT_clip, context)
    assert failed[1:4] == [("operator", "dynasketch.sketch"), ("label", "DynaSketch failed: the engine crashed"),
                           ("label", "Log: /tmp/job/dynasketch.log")]

    header = []
    panels.DYNASKETCH_PT_clip.draw_header_preset(WithLayout(panels.DYNASKETCH_PT_clip,
                                                            RecordingLayout(bpy, header)), context)
    assert header == [("operator", "dynasketch.reset_settings")]
    result = draw(bpy, panels.DYNASKETCH_PT_clip_result, context)
    style = [("prop", "style"), ("prop", "line_colour"), ("prop", "boil"), ("operator", "dynasketch.apply_style")]
    assert result == [("prop", "target_object"), ("prop", "background"), ("prop", "match_scene")] + style + REVISE
    settings.line_colour = "custom"                                   # the chosen colour shows with it
    assert ("prop", "line_custom") in draw(bpy, panels.DYNASKETCH_PT_clip_result, context)


def test_the_sequencer_panel_shows_the_sequencer_scene(blender, disc_movie):
    bpy = blender
    from dynasketch_blender import panels

    edit = bpy.data.scenes.new("Edit")
    strip = edit.sequence_editor_create().strips.new_movie("take", disc_movie, channel=1, frame_start=20)
    edit.sequence_editor.active_strip = strip
    edit.dynasketch.status = "Sketched 10 frames into take Sketch"
    context = SimpleNamespace(scene=bpy.context.scene, sequencer_scene=edit,
                              space_data=SimpleNamespace(type="SEQUENCE_EDITOR"))
    drawn = draw(bpy, panels.DYNASKETCH_PT_sequencer, context)
    assert drawn[:4] == [("label", "take: frames 20-29"), ("operator", "dynasketch.sketch"),
                         ("operator", "dynasketch.sketch_strips"), ("label", "Sketched 10 frames into take Sketch")]
    assert not any("Log:" in str(item) for item in drawn)
    result = draw(bpy, panels.DYNASKETCH_PT_sequencer_result, context)
    assert result[:2] == [("prop", "target_object"), ("prop", "background")]    # the edit is never matched
    assert ("prop", "match_scene") not in result and ("operator", "dynasketch.apply_style") in result
    assert result[-len(REVISE):] == REVISE


def test_scenes_made_in_the_session_take_the_preferences_defaults(blender, prefs):
    """The New Scenes defaults reach a scene made during the session, and the scenes open when
    the add-on was enabled, at Blender's next update; a setting the user chose stays, even
    when that update is the one the choice itself causes."""
    bpy = blender
    prefs.default_strokes, prefs.default_preset, prefs.default_device = 24, "paper", "cpu"
    shot = bpy.data.scenes.new("Shot 2")
    chosen = bpy.data.scenes.new("Shot 3")
    chosen.dynasketch.seeds = 5                           # set before any update saw the scene
    bpy.context.view_layer.update()                       # any edit in the UI updates the depsgraph
    for scene in (shot, bpy.context.scene):
        s = scene.dynasketch
        assert (s.strokes, s.preset, s.device) == (24, "paper", "cpu")
    assert (chosen.dynasketch.seeds, chosen.dynasketch.strokes) == (5, 16)
    shot.dynasketch.strokes = 8
    prefs.default_strokes = 30
    bpy.context.view_layer.update()
    assert shot.dynasketch.strokes == 8


def test_the_engine_runs_are_not_offered_for_repeat_or_redo(blender):
    """Blender repeats a registered operator (Shift+R, Repeat History, the Adjust Last
    Operation panel) by calling its ``execute``, which for Sketch and Download Models is the
    blocking run meant for scripts: the window would freeze for the whole engine run, with
    no Esc. So they are not registered; Sketch still pushes an undo step (Ctrl+Z removes
    the result)."""
    for name in ("DYNASKETCH_OT_sketch", "DYNASKETCH_OT_download_models"):
        options = getattr(getattr(blender.types, name), "bl_options", set())
        assert "REGISTER" not in options, name
    assert "UNDO" in blender.types.DYNASKETCH_OT_sketch.bl_options
