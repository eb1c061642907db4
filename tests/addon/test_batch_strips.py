"""Sketch Selected Strips through real bpy and the real `dynasketch batch` on a local Ray:
every selected strip built where the Sequencer plays it, each as soon as its sketch is done,
and Cancel."""
import json
import time

import pytest

from helpers import check_against_sketch, draw_panel, keyframes, sketch_objects

pytest.importorskip("ray")


def edit_with_strips(bpy, movie):
    """Two trimmed movie strips of the disc, selected, and a third one not selected."""
    scene = bpy.context.scene
    strips = scene.sequence_editor_create().strips
    first = strips.new_movie("first", movie, channel=1, frame_start=1)
    first.frame_offset_end = 4                                       # source frames 0..5 at 1..6
    second = strips.new_movie("second", movie, channel=2, frame_start=20)
    second.frame_offset_start, second.frame_offset_end = 3, 2        # source frames 3..7 at 23..27
    other = strips.new_movie("other", movie, channel=3, frame_start=40)
    for strip in strips:
        strip.select = strip.name != other.name
    s = scene.dynasketch
    s.preset, s.strokes, s.seeds, s.mask_mode, s.device = "fast", 3, 1, "none", "cpu"
    return scene, first, second


def test_sketch_selected_strips_builds_each_strip_where_it_plays(blender, engine_cli, disc_movie):
    bpy = blender
    scene, first, second = edit_with_strips(bpy, disc_movie)
    assert bpy.ops.dynasketch.sketch_strips() == {"FINISHED"}, scene.dynasketch.status
    settings = scene.dynasketch
    assert not settings.running and not settings.failed and settings.progress == 1.0
    objects = {o.name: o for o in sketch_objects(bpy)}
    assert sorted(objects) == ["first Sketch", "second Sketch"]
    assert settings.status.startswith("Sketched 2 strips")
    for strip, frames in ((first, range(0, 6)), (second, range(3, 8))):
        obj = objects[f"{strip.name} Sketch"]
        doc = json.load(open(obj["dynasketch_sketch"]))
        assert doc["complete"] and [f["index"] for f in doc["frames"]] == list(frames)
        offset = strip.frame_start
        check_against_sketch(obj, doc, lambda i: offset + i)
        assert [k.frame_number for k in keyframes(obj, drawn=True)] == list(range(strip.frame_final_start,
                                                                                strip.frame_final_end))
    # the batch's record says where each ran
    record = json.load(open(settings.log_path))
    assert {s["state"] for s in record["shots"]} == {"done"} and len(record["shots"]) == 2


def test_each_strip_is_built_as_it_finishes_and_cancel_stops_the_batch(blender, engine_cli, disc_movie):
    """The step functions the modal operator runs on its timer: a strip's result is there while
    the batch still runs; then a second batch is cancelled half way and the scene keeps what it has."""
    bpy = blender
    from dynasketch_blender import batch_operators, sketch_job

    scene, first, second = edit_with_strips(bpy, disc_movie)
    run = batch_operators.StripBatchRun(scene.name)
    assert run.start(bpy.context) == ""
    assert scene.dynasketch.running
    drawn = draw_panel(bpy, bpy.types.DYNASKETCH_PT_sequencer, bpy.context)
    assert ("operator", "dynasketch.cancel") in drawn and any(d[0] == "progress" for d in drawn)
    built_while_running, progress = [], []
    deadline = time.monotonic() + 240
    while (state := run.update()) == sketch_job.RUNNING:
        built_while_running = list(run.built)
        progress.append(scene.dynasketch.progress)
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state == sketch_job.DONE, run.job.error
    assert run.finish(state)[0] == {"FINISHED"}
    assert len(built_while_running) >= 1                 # built as it finished, not at the end
    assert sorted(run.built) == ["first Sketch", "second Sketch"]
    assert progress == sorted(progress) and 0 < max(progress) and scene.dynasketch.progress == 1.0

    # Another run with more strokes (new jobs), cancelled once it has started: nothing more is built
    scene.dynasketch.strokes = 5
    run = batch_operators.StripBatchRun(scene.name)
    assert run.start(bpy.context) == ""
    deadline = time.monotonic() + 120
    while run.job.progress == 0.0 and run.update() == sketch_job.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    run.job.cancel()
    assert run.job.process.returncode() == 130, run.job.process.stderr[-12:]   # it stopped itself (not killed)
    assert run.finish(run.job.state)[0] == {"CANCELLED"}
    assert scene.dynasketch.status.startswith("Cancelled:") and not scene.dynasketch.running
    assert len(sketch_objects(bpy)) == 2
    record = json.load(open(run.job.log))
    assert {s["state"] for s in record["shots"]} <= {"interrupted", "done"}
    assert "interrupted" in {s["state"] for s in record["shots"]}
