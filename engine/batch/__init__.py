"""``dynasketch batch``: a shot list sketched on Ray, a local one or a cluster (docs/BATCH.md).

shots.py reads the list (CSV or JSON) into ``dynasketch sketch`` command lines; farm.py runs
one Ray task per shot (one GPU each on CUDA, retried when a worker dies: the engine resumes
the shot's folder) and records each shot in ``ROOT/batch.json`` (record.py); chunks.py splits
a long shot into chunks sketched in parallel and stitches them (``--chunk N``); report.py is
the progress (bars or JSON lines).
"""
from .farm import run_batch

__all__ = ["run_batch"]
