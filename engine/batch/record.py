"""``ROOT/batch.json``: each shot's state, times, device, machine and error (docs/BATCH.md).

Written again (atomically) at every change, so it always says where the batch stands; a
later run of the same list reads it to skip the shots already done.
"""
from __future__ import annotations

import datetime
import json
import os

from ..export import _atomic_write

FORMAT = "dynasketch.batch"
VERSION = 1
STATES = ("queued", "running", "done", "failed", "interrupted")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class BatchRecord:
    def __init__(self, root: str, shots_file: str):
        self.root = os.path.abspath(root)
        self.path = os.path.join(self.root, "batch.json")
        self.shots_file = os.path.abspath(shots_file)
        self.before = self._read()
        self.shots: dict[str, dict] = {}

    def _read(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
            return {s["out"]: s for s in doc.get("shots", []) if isinstance(s, dict) and "out" in s}
        except (OSError, ValueError, TypeError):
            return {}

    def finished_before(self, shot, spec: list[str]) -> dict | None:
        """The earlier run's entry for ``shot`` if it finished with the same spec and its
        sketch is still there, complete."""
        old = self.before.get(shot.out)
        if not old or old.get("state") != "done" or old.get("spec") != spec:
            return None
        try:
            with open(os.path.join(self.root, shot.out, "sketch.json"), encoding="utf-8") as f:
                sketch = json.load(f)
        except (OSError, ValueError):
            return None
        return old if sketch.get("complete") is True else None

    def add(self, shot, spec: list[str], **values) -> dict:
        entry = {"out": shot.out, "clip": shot.clip, "state": "queued", "attempts": 0, "started": None,
                 "finished": None, "seconds": None, "device": None, "machine": None, "gpus": None,
                 "frames": None, "error": None, "spec": spec,
                 "sketch": os.path.join(self.root, shot.out, "sketch.json")}
        entry.update(values)
        self.shots[shot.out] = entry
        return entry

    def update(self, out: str, **values) -> None:
        self.shots[out].update(values)
        self.write()

    def write(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        doc = {"format": FORMAT, "version": VERSION, "shots_file": self.shots_file, "updated": now(),
               "shots": list(self.shots.values())}
        _atomic_write(self.path, json.dumps(doc, indent=1).encode())

    def counts(self) -> dict:
        out = {state: 0 for state in STATES}
        for entry in self.shots.values():
            out[entry["state"]] += 1
        return out
