"""Strokes carried from frame to frame: which ones the tracks carried into trouble.

``checks`` holds the tests the sketcher applies to strokes moved along the tracks before a
window is optimised (``pipeline.Sketcher.window``): lost by the tracker, off the frame's lines
or outside the subject, across close lines rather than along one (a fan of strings), carried
onto a line another stroke draws (a thin part), crossing other strokes along their length or
themselves (a tangle; strokes meeting at their ends where lines meet are none), or longer than
the subject's growth allows. A stroke that fails one is
re-seeded with the same id on the frame's lines. After the window's optimisation, ``knotted``
finds what the optimisation itself left crossing or off the lines; those are re-seeded too and
the window optimised once more.
"""
from .checks import across, crossings, duplicates, knotted, lengthened, off_lines, scaled_anchor

__all__ = ["across", "crossings", "duplicates", "knotted", "lengthened", "off_lines", "scaled_anchor"]
