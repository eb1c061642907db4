"""Applying an edit to the folder of an earlier run: the frames before it kept, the edited frame
written as given, and the state the pipeline goes on from (as a resume would, from that frame)."""
from __future__ import annotations

import datetime
import os

import numpy as np

from ..errors import EngineError
from .edits import Edits, check_frame
from .strokes import StrokeSet, fit_cubic, knots, resampled

FIELDS = ("width", "opacity", "widths")        # what the artist may give beside the points


def _changed(given: dict, before: dict | None) -> bool:
    """Whether the artist moved, redrew or restyled a stroke (a new id is a stroke drawn)."""
    if before is None or len(given["points"]) != len(before["points"]):
        return True
    if np.abs(np.asarray(given["points"], float) - np.asarray(before["points"], float)).max() > 1e-3:
        return True
    if "widths" in given and "widths" in before:     # line weight: the widths say it (the one
        a, b = np.asarray(given["widths"], float), np.asarray(before["widths"], float)   # width is their mean)
        if a.shape != b.shape or np.abs(a - b).max() > 1e-3 * max(1.0, float(np.abs(b).max())):
            return True
        keys = ("opacity",)
    else:
        keys = ("width", "opacity")
    for key in keys:
        if key in given and abs(float(given[key]) - float(before.get(key, given[key]))) > 1e-3 * max(1.0, abs(given[key])):
            return True
    return False


def revise(folder, state: dict | None, edits: Edits, total: int) -> dict | None:
    """Apply ``edits`` to ``folder`` (``export.SketchFolder``, its earlier run loaded with
    ``state``): the state to go on from after the edited frame, or None when there is nothing
    to do (the same edit as the last revision, and the sketch is complete). The same edit given
    again while its run was stopped goes on with that run."""
    if state is None:
        raise EngineError(f"--out {folder.path}: holds no earlier run to revise; sketch the clip into it first")
    check_frame(edits, [f["index"] for f in folder.frames])
    revisions = folder.header.setdefault("revisions", [])
    if revisions and revisions[-1].get("frame") == edits.frame and revisions[-1].get("edits") == edits.digest:
        return state if len(folder.frames) < total else None

    if "settings" in folder.earlier:             # written before this run's own settings are known
        folder.header.setdefault("settings", folder.earlier["settings"])
    k = [f["index"] for f in folder.frames].index(edits.frame)
    old_frame = folder.frames[k]
    before = {s["id"]: s for s in old_frame["strokes"]}
    carried = StrokeSet.from_state(state, len(before))
    extras_before = carried.extras
    weight = float(state.get("weight") or next(iter(before.values()), {}).get("width", 1.0))
    size = int(np.asarray(state["strokes"]).shape[-2]) if np.asarray(state["strokes"]).ndim == 3 else 4

    ids, locked, cubics, drawn, extras, records = [], [], [], {}, {}, []
    moved = new = 0
    for given in edits.strokes:
        sid, old = given["id"], before.get(given["id"])
        changed = _changed(given, old)
        new += old is None
        moved += changed and old is not None
        lock = bool(given.get("locked", True if changed else (old or {}).get("locked", False)))
        points = np.asarray(given["points"], np.float64)
        ids.append(sid)
        locked.append(lock)
        cubics.append(points if len(points) == size else fit_cubic(points, (size - 1) // 3))
        if lock:
            drawn[sid] = points
        if changed:
            extras[sid] = {key: given[key] for key in FIELDS if key in given}
            if not lock and "widths" in extras[sid]:        # refined as a cubic of the run's size
                extras[sid]["widths"] = resampled(extras[sid]["widths"], knots(cubics[-1]))
        elif sid in extras_before:
            extras[sid] = extras_before[sid]
        record = {"id": sid, "points": given["points"],
                  "width": given.get("width", (old or {}).get("width", weight)),
                  "opacity": given.get("opacity", (old or {}).get("opacity", 1.0))}
        if "widths" in given:
            record["widths"] = given["widths"]
        if lock:
            record["locked"] = True
        records.append(record)
    deleted = len(set(before) - set(ids))
    strokes = StrokeSet(ids, locked, drawn, extras, np.stack(cubics))

    # The frames after the edited one go (their SVGs too: each is written again as it is sketched).
    later = [f["index"] for f in folder.frames[k + 1:]]
    folder.frames = folder.frames[:k]
    for index in later + [i for i in state.get("history", {}) if i > edits.frame]:
        path = os.path.join(folder.path, "svg", f"frame_{index:06d}.svg")
        if os.path.isfile(path):
            os.unlink(path)
    folder.add_frame(edits.frame, records, mask_note=old_frame.get("mask_note"))
    revisions.append({"frame": edits.frame,
                      "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      "edits": edits.digest, "moved": int(moved), "drawn": int(new), "deleted": int(deleted)})

    import torch

    history = {i: h for i, h in (state.get("history") or {}).items() if i <= edits.frame}
    at = history.get(edits.frame, {})
    going_on = {"strokes": torch.from_numpy(np.stack(cubics)), "framing": at.get("framing"),
                "subject_box": at.get("subject_box"), "reseeds": state.get("reseeds", 0), "weight": weight,
                "anchor": None, "history": history, "stroke_set": strokes.as_state()}
    folder.save(going_on, complete=len(folder.frames) == total)
    return going_on
