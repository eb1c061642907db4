"""Downloading the neural backends' weights from Blender: ``dynasketch models download
--progress json`` in its own process, as step functions (``engine_process.EngineJob``); a
cancelled download leaves its partial file, and the next one resumes it."""
from __future__ import annotations

from .engine_process import EngineCommand, EngineJob

# The files `auto` picks up (docs/MODELS.md): about 1.3 GB in all. ISNet (rembg's release)
# first: it masks the subject on any machine and needs nothing but the download.
AUTO_MODELS = (
    ("isnet-general-use", "ISNet", "Masks of the subject on any machine (about 180 MB)"),
    ("clip-rn101", "CLIP RN101", "CLIPasso's guidance loss (used on a CUDA GPU)"),
    ("clip-vit-b-32", "CLIP ViT-B/32", "Where strokes start (saliency)"),
    ("inspyrenet-base", "InSPyReNet", "Masks of the subject (368 MB; slow without a GPU)"),
    ("cotracker3-offline", "CoTracker3", "Point tracking (CoTracker itself must be installed, docs/MODELS.md)"),
    ("isnet-imgly-medium", "ISNet (IMG.LY)", "ISNet's smaller IMG.LY build (88 MB; needs Node.js's npm)"),
)
# The preference's flags, as saved: each model keeps its bit whatever the order shown.
FLAG_BITS = {"clip-rn101": 1, "clip-vit-b-32": 2, "inspyrenet-base": 4, "cotracker3-offline": 8,
             "isnet-imgly-medium": 16, "isnet-general-use": 32}
MODEL_ITEMS = [(name, label, description, "", FLAG_BITS[name]) for name, label, description in AUTO_MODELS]


class ModelDownload(EngineJob):
    cancelled_message = "Download cancelled (Download Models again resumes it)"

    def __init__(self, engine: EngineCommand, names: list[str], model_dir: str = ""):
        self.names = list(names)
        self.folder = model_dir
        super().__init__(list(engine.prefix) + ["models", "download", *self.names, "--progress", "json"],
                         {"DYNASKETCH_HOME": model_dir} if model_dir else {}, engine.cwd)

    def _read(self, events) -> None:
        super()._read(events)
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

    def _succeeded(self) -> None:
        self.message = f"Downloaded {', '.join(self.names)} into {self.folder}"

    def _fail(self, reason: str) -> None:
        reason = (reason.replace("DYNASKETCH_HOME", "the Model Folder (preferences)")   # the engine's advice, here
                  .replace("run the same command again", "Download Models again"))
        super()._fail(f"Download failed: {reason}")
