"""Checks shared by the add-on tests."""
import sys

import numpy as np
import pytest


def sketch_objects(bpy):
    return [o for o in bpy.data.objects if o.type == "GREASEPENCIL"]


def keyframes(obj, layer="Sketch", drawn=False):
    """The layer's keyframes in frame order; ``drawn``: only those with strokes (not the empty
    one that ends a strip's drawing)."""
    frames = sorted(obj.data.layers[layer].frames, key=lambda f: f.frame_number)
    return [f for f in frames if len(f.drawing.strokes)] if drawn else frames


def check_against_sketch(obj, doc, frame_of):
    """Keyframes at the right scene frames, the same strokes everywhere, Bezier, positions
    and handles equal to sketch.json through the placement transform."""
    from dynasketch_blender.grease_pencil_builder import STROKE_ID, Placement

    place = Placement(doc["width"], doc["height"])
    frames = keyframes(obj, drawn=True)
    assert [f.frame_number for f in frames] == sorted(frame_of(f["index"]) for f in doc["frames"])
    by_scene_frame = {frame_of(f["index"]): f for f in doc["frames"]}
    counts = set()
    for kf in frames:
        drawing = kf.drawing
        strokes = by_scene_frame[kf.frame_number]["strokes"]
        counts.add(len(drawing.strokes))
        assert len(drawing.strokes) == len(strokes)
        assert all(s.curve_type == 2 for s in drawing.strokes)                    # BEZIER
        ids = [0] * len(strokes)
        drawing.attributes[STROKE_ID].data.foreach_get("value", ids)
        assert ids == [s["id"] for s in strokes]
        for stroke, want in zip(drawing.strokes, strokes):
            pts = want["points"]
            got = [tuple(p.position) for p in stroke.points]
            assert len(got) == (len(pts) - 1) // 3 + 1
            assert np.allclose(got, [place.to_plane(*p) for p in pts[0::3]], atol=1e-5)
            for k, point in enumerate(stroke.points):
                if k + 1 < len(stroke.points):
                    assert np.allclose(tuple(point.handle_right.position), place.to_plane(*pts[3 * k + 1]), atol=1e-5)
                if k > 0:
                    assert np.allclose(tuple(point.handle_left.position), place.to_plane(*pts[3 * k - 1]), atol=1e-5)
            widths = want.get("widths") or [want["width"]] * len(stroke.points)     # line weight, or even
            assert [p.radius for p in stroke.points] == pytest.approx([place.radius(w) for w in widths], rel=1e-5)
            assert stroke.points[0].opacity == pytest.approx(want.get("opacity", 1.0), rel=1e-5)
    assert len(counts) == 1                                   # the same stroke count on every keyframe


class RecordingLayout:
    """Stands in for Blender's UILayout (none exists in background mode): records what a
    draw() draws, and checks that each property and operator it names exists."""

    def __init__(self, bpy, drawn):
        self.bpy, self.drawn, self.use_property_split = bpy, drawn, False

    def _child(self, *args, **kwargs):
        return self

    column = row = box = _child

    def prop(self, data, name, **kwargs):
        assert data.bl_rna.properties.get(name) is not None, name
        self.drawn.append(("prop", name))

    def prop_search(self, data, name, search_data, search_name, **kwargs):
        assert data.bl_rna.properties.get(name) is not None, name
        assert search_data.bl_rna.properties.get(search_name) is not None, search_name
        self.drawn.append(("prop_search", name, search_name))

    def operator(self, idname, **kwargs):
        group, name = idname.split(".")
        assert hasattr(getattr(self.bpy.ops, group), name), idname
        self.drawn.append(("operator", idname))

    def progress(self, factor, type, text):
        self.drawn.append(("progress", round(factor, 2), text))

    def label(self, text, **kwargs):
        self.drawn.append(("label", text))


class WithLayout:
    """The preferences, or a panel class, drawing into ``layout``."""

    def __init__(self, owner, layout):
        self._owner, self.layout = owner, layout

    def __getattr__(self, name):
        return getattr(self._owner, name)


def draw_panel(bpy, panel, context) -> list:
    """What ``panel`` draws in ``context``, recorded (background mode has no UI)."""
    drawn = []
    panel.draw(WithLayout(panel, RecordingLayout(bpy, drawn)), context)
    return drawn


def fake_engine(tmp_path, monkeypatch, body: str, preamble: str = "") -> None:
    """``DYNASKETCH_PYTHON`` runs a script in place of the engine: it makes ``out`` (the
    ``--out`` folder), has ``say(**event)`` print a progress line, then runs ``preamble`` and
    ``body``."""
    script = tmp_path / "fake_engine.py"
    script.write_text("import json, os, signal, sys, time\n"
                      "def say(**kw): print(json.dumps(kw), flush=True)\n"
                      "out = sys.argv[sys.argv.index('--out') + 1]\nos.makedirs(out, exist_ok=True)\n"
                      + preamble + body)
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("DYNASKETCH_PYTHON", str(wrapper))
