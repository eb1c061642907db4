"""Downloading the neural backends' weights from Blender: ``dynasketch models download
--progress json`` in its own process, driven like a sketch job: ``start()``, then ``step()``
until it is not RUNNING; ``cancel()`` at any time (the partial file stays, and the next
download resumes it)."""
from __future__ import annotations

from .engine_process import EngineCommand, EngineProcess
from .sketch_job import CANCELLED, DONE, FAILED, RUNNING

# The files `auto` picks up (docs/MODELS.md): about 1 GB in all.
AUTO_MODELS = (
    ("clip-rn101", "CLIP RN101", "CLIPasso's guidance loss (used on a CUDA GPU)"),
    ("clip-vit-b-32", "CLIP ViT-B/32", "Where strokes start (saliency)"),
    ("inspyrenet-base", "InSPyReNet", "Masks of the subject"),
    ("cotracker3-offline", "CoTracker3", "Point tracking (CoTracker itself must be installed, docs/MODELS.md)"),
)


class ModelDownload:
    def __init__(self, engine: EngineCommand, names: list[str], model_dir: str = ""):
        self.names = list(names)
        self.command = list(engine.prefix) + ["models", "download", *self.names, "--progress", "json"]
        self.process = EngineProcess(self.command, {"DYNASKETCH_HOME": model_dir} if model_dir else {},
                                     engine.cwd)
        self.folder = model_dir
        self.state = RUNNING
        self.progress = 0.0
        self.message = "starting the engine"
        self.error = ""

    def start(self) -> str:
        try:
            self.process.start()
        except OSError as exc:
            self._fail(f"the engine did not start: {exc}")
        return self.state

    def _read(self, events) -> None:
        for event in events:
            kind = event.get("event")
            if kind in ("start", "done") and event.get("out"):
                self.folder = event["out"]
            if kind == "progress":
                done, total = event.get("done") or 0, event.get("total") or 0
                share = min(1.0, done / total) if total else 0.0
                self.progress = max(self.progress, ((event.get("file") or 0) + share) / (event.get("files") or 1))
                size = f": {done / 1e6:.0f} of {total / 1e6:.0f} MB" if total else ""
                self.message = f"{event.get('message', '')}{size}"
            if kind == "error":
                self.error = str(event.get("message", ""))

    def step(self) -> str:
        """Read what the engine said since the last step; returns the download's state."""
        if self.state != RUNNING:
            return self.state
        events, code = self.process.drain()
        self._read(events)
        if code is None:
            return RUNNING
        if code == 0:
            self.state, self.progress = DONE, 1.0
            self.message = f"Downloaded {', '.join(self.names)} into {self.folder}"
        else:
            self._fail(self.error or self.process.last_error() or f"the engine stopped with exit code {code}")
        return self.state

    def cancel(self) -> None:
        if self.state == RUNNING:
            self.process.stop(grace=1.0)
            self.state, self.message = CANCELLED, "Download cancelled (Download Models again resumes it)"

    def _fail(self, reason: str) -> None:
        self.state = FAILED
        self.error = self.message = f"Download failed: {reason}"
