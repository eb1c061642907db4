"""Line extraction and vectorisation: where the weight-free sketcher's strokes start.

``extract.extract_lines`` finds a canvas frame's lines (the subject's silhouette and its
strongest long interior lines), ``vectorise`` turns centrelines into cubic Beziers
(tracing, spur pruning, joining by good continuation, Schneider's fit), and
``strokes.line_strokes`` picks N strokes from them by salience.
"""
from .extract import Lines, extract_lines
from .strokes import line_strokes

__all__ = ["Lines", "extract_lines", "line_strokes"]
