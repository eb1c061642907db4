"""DynaSketch engine: a video becomes a temporally coherent animated stroke sketch.

Pipeline (see docs/ARCHITECTURE.md): ``video`` decode -> ``masks`` -> ``tracking`` ->
``initialise`` -> ``optimise`` (``rasterizer`` + ``losses``) -> ``export``;
``pipeline.run_sketch`` runs it, ``cli`` is the ``dynasketch`` command; ``revisions``
carries an artist's edit of one frame through the frames after it (``--revise``); ``batch``
runs shot lists on Ray (``dynasketch batch``).
"""

__version__ = "0.1.0"
