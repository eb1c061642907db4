"""Revisions: re-sketch forward from a frame the artist edited (``dynasketch sketch --revise``).

An edit is one frame's drawing as the artist left it (``edits.read_edits``): generated strokes
keep their ids, a new id is a stroke the artist drew, a missing id is deleted. ``apply.revise``
keeps the frames before the edited one, writes it as given and hands the pipeline the state to
go on from, as a resume would; ``strokes.StrokeSet`` carries the strokes' ids, locks and the
artist's own points (a locked stroke moves with the subject, as drawn) through the frames after.
"""
from .apply import revise
from .edits import Edits, check_before_the_run, read_edits
from .strokes import StrokeSet

__all__ = ["Edits", "StrokeSet", "check_before_the_run", "read_edits", "revise"]
