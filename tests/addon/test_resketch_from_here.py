"""Re-Sketch From Here, Delete Stroke Everywhere and Lock through real bpy: an artist edits one
keyframe of a result (moves a stroke, deletes one, draws one, locks one), the engine of this
source tree carries the edit through the frames after it, and the keyframes show it."""
import json
import os

import numpy as np
import pytest
from conftest import ENGINE_PYTHON
from helpers import keyframes, sketch_objects
from media import moving_disc, write_sketch, write_video

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEED = 3.0                                   # the disc's pixels per frame (media.moving_disc)


@pytest.fixture
def this_engine(blender, tmp_path, monkeypatch):
    """The engine of this source tree (the one installed in the environment may be older)."""
    wrapper = tmp_path / "engine-python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{ENGINE_PYTHON}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("DYNASKETCH_PYTHON", str(wrapper))


def knots(drawing) -> list[np.ndarray]:
    return [np.array([tuple(p.position) for p in s.points]) for s in drawing.strokes]


def ids_of(drawing, name="dynasketch_id", default=0) -> list:
    attr = drawing.attributes.get(name)
    if attr is None:
        return [default] * len(drawing.strokes)
    values = [default] * len(drawing.strokes)
    attr.data.foreach_get("value", values)
    return values


def select_only(drawing, index: int) -> None:
    for k, stroke in enumerate(drawing.strokes):
        stroke.select = k == index
        for p in stroke.points:
            p.select = k == index


def test_an_edit_at_one_frame_is_carried_through_the_frames_after(blender, engine_cli, this_engine, tmp_path):
    bpy = blender
    frames, masks = moving_disc(t_len=12, speed=SPEED)
    clip = bpy.data.movieclips.load(write_video(str(tmp_path / "disc.mp4"), frames))
    mask = write_video(str(tmp_path / "disc.mask.mp4"), np.repeat(masks[..., None], 3, -1))
    s = bpy.context.scene.dynasketch
    s.preset, s.strokes, s.seeds, s.device, s.mask_mode, s.mask_path = "fast", 5, 1, "cpu", "file", mask
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, s.status
    (obj,) = sketch_objects(bpy)
    scene = bpy.context.scene
    bpy.context.view_layer.objects.active = obj
    before = {k.frame_number: knots(k.drawing) for k in keyframes(obj)}
    key = keyframes(obj)[4]                      # source frame 4
    scene.frame_set(key.frame_number)
    drawing = key.drawing
    assert ids_of(drawing) == [0, 1, 2, 3, 4]

    # move stroke 1 (its knots and handles), lock stroke 3, delete stroke 2, draw a stroke
    shift = np.array([0.04, -0.02, 0.0])
    for p in drawing.strokes[1].points:
        p.position = tuple(np.array(p.position) + shift)
        p.handle_left.position = tuple(np.array(p.handle_left.position) + shift)
        p.handle_right.position = tuple(np.array(p.handle_right.position) + shift)
    moved = knots(drawing)[1]
    select_only(drawing, 3)
    assert bpy.ops.dynasketch.lock_strokes() == {"FINISHED"}
    kept = knots(drawing)[3]
    drawing.remove_strokes(indices=[2])
    drawing.add_strokes([5])                      # a freehand stroke across the disc's middle
    disc_x = (30 + SPEED * 4 - 64) * 2 / 96       # the disc's centre on the sketch plane
    new = drawing.strokes[-1]
    for k, p in enumerate(new.points):
        p.position = (disc_x - 0.15 + 0.075 * k, 0.05 * (k % 2), 0.0)
        p.radius = 0.01
    drawn = knots(drawing)[-1]
    bpy.ops.ed.undo_push(message="edited")        # background mode pushes no undo step by itself

    assert bpy.ops.dynasketch.resketch_from_here() == {"FINISHED"}, s.status
    assert s.status.startswith("Re-sketched 7 frames") and not s.failed
    doc = json.load(open(obj["dynasketch_sketch"]))
    assert doc["revisions"][-1]["frame"] == 4 and doc["revisions"][-1]["deleted"] == 1
    after = keyframes(obj)
    for k in after:
        if k.frame_number < key.frame_number:                # the frames before, as they were
            assert all(np.array_equal(a, b) for a, b in zip(knots(k.drawing), before[k.frame_number]))
    assert ids_of(key.drawing) == [0, 1, 3, 4, 5]            # the drawn stroke got an id of its own
    for k in after:
        if k.frame_number <= key.frame_number:
            continue
        t = k.frame_number - key.frame_number
        assert ids_of(k.drawing) == [0, 1, 3, 4, 5]          # stroke 2 never back
        assert ids_of(k.drawing, "dynasketch_locked", False) == [False, True, True, False, True]
        go = np.array([SPEED * t * 2 / 96, 0.0, 0.0])        # the disc's move on the plane
        shapes = knots(k.drawing)
        for got, was in ((shapes[1], moved), (shapes[2], kept)):
            assert np.abs(got - (was + go)).max() < 0.04 + 0.01 * t, (k.frame_number, got - was)
        got = shapes[4]
        assert len(got) == len(drawn)                         # kept as drawn: its own points
        assert np.abs(got - (drawn + go)).max() < 0.04 + 0.01 * t, (k.frame_number, got - drawn)
        frame = next(f for f in doc["frames"] if f["index"] == 4 + t)
        assert [st["id"] for st in frame["strokes"]] == [0, 1, 3, 4, 5]

    # Ctrl+Z: the keyframes after are as the first sketch left them
    name, edited = obj.name, key.frame_number
    bpy.ops.ed.undo_push(message="Re-Sketch From Here")
    bpy.ops.ed.undo()
    obj = bpy.data.objects[name]
    for k in keyframes(obj):
        if k.frame_number > edited:
            assert ids_of(k.drawing) == [0, 1, 2, 3, 4]
            assert all(np.array_equal(a, b) for a, b in zip(knots(k.drawing), before[k.frame_number]))


def test_delete_everywhere_and_lock_by_id(blender, tmp_path):
    bpy = blender
    write_sketch(tmp_path / "sketch.json", frames=(0, 2, 4, 6), strokes=3)
    assert bpy.ops.dynasketch.import_sketch(filepath=str(tmp_path / "sketch.json")) == {"FINISHED"}
    (obj,) = sketch_objects(bpy)
    bpy.context.view_layer.objects.active = obj
    scene = bpy.context.scene
    numbers = [k.frame_number for k in keyframes(obj)]
    scene.frame_set(numbers[2] + 1)                             # between keyframes: the one shown
    select_only(keyframes(obj)[2].drawing, 1)
    assert bpy.ops.dynasketch.delete_stroke_everywhere() == {"FINISHED"}
    assert [ids_of(k.drawing) for k in keyframes(obj)] == [[0, 1, 2], [0, 1, 2], [0, 2], [0, 2]]
    scene.frame_set(numbers[1])
    select_only(keyframes(obj)[1].drawing, 2)
    assert bpy.ops.dynasketch.delete_stroke_everywhere(every_frame=True) == {"FINISHED"}
    assert [ids_of(k.drawing) for k in keyframes(obj)] == [[0, 1], [0, 1], [0], [0]]

    select_only(keyframes(obj)[1].drawing, 0)
    assert bpy.ops.dynasketch.lock_strokes() == {"FINISHED"}
    assert ids_of(keyframes(obj)[1].drawing, "dynasketch_locked", False) == [True, False]

    # what the engine is sent: ids, the lock, handles kept, and a drawn stroke with a new id
    from dynasketch_blender import revise

    drawing = keyframes(obj)[1].drawing
    drawing.add_strokes([3])
    for k, p in enumerate(drawing.strokes[-1].points):
        p.position = (0.1 * k, 0.2, 0.0)
    edit = revise.write_edit(obj, keyframes(obj)[1], 2)
    sent = json.load(open(edit))
    assert sent["frame"] == 2 and [st["id"] for st in sent["strokes"]] == [0, 1, 3]
    assert sent["strokes"][0]["locked"] and "locked" not in sent["strokes"][1]
    assert np.allclose(sent["strokes"][0]["points"], [[42, 40], [102, 20], [162, 70], [262, 50]], atol=1e-3)
    assert len(sent["strokes"][2]["points"]) == 7                    # its 3 points, as straight cubics
    assert ids_of(drawing) == [0, 1, 3]

    scene.frame_set(numbers[0])
    select_only(keyframes(obj)[0].drawing, 0)
    obj.data.layers["Sketch"].frames.remove(numbers[0])
    with pytest.raises(RuntimeError, match="shows no sketched frame at frame 1"):   # one line, as Blender reports it
        bpy.ops.dynasketch.lock_strokes()
