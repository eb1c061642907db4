"""Sketch Selected Strips: the strips as a shot list for ``dynasketch batch`` (on a local Ray,
or the cluster set in the preferences), run as one ``engine_process.EngineJob`` whose strips
are built as they finish. Standard library and bpy only."""
from __future__ import annotations

import hashlib
import json
import os

from . import job_folders
from .engine_process import CANCELLED, RUNNING, EngineJob
from .sketch_job import SketchJob, in_blender_terms

STRIP_TYPES = {"MOVIE", "IMAGE", "MOVIECLIP"}
STOP_GRACE = 30.0               # seconds the batch has to stop its Ray before it is killed


def selected_strips(scene) -> list:
    """The selected movie, image and clip strips of the edit, in time then channel order."""
    from . import source as sources

    strips = [s for s in sources.all_strips(scene) if s.select and s.type in STRIP_TYPES]
    return sorted(strips, key=lambda s: (s.frame_final_start, s.channel))


def shot_row(command: list[str], prefix_length: int) -> dict:
    """A ``dynasketch sketch`` command line (``SketchJob.command``) as a shot of the list:
    ``clip``, ``out`` and its options as columns (docs/BATCH.md)."""
    argv = command[prefix_length:]
    assert argv[0] == "sketch"
    row: dict = {"clip": argv[1]}
    i = 2
    while i < len(argv):
        name = argv[i][2:]
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value = argv[i + 1]
            if name == "subject":
                row.setdefault(name, []).append(value)
            else:
                row[name] = value
            i += 2
        else:
            row[name] = True
            i += 1
    row.pop("progress", None)
    row["out"] = os.path.basename(row["out"])
    return row


class StripBatchJob(EngineJob):
    """``dynasketch batch`` over ``jobs`` (one ``SketchJob`` per strip, not started: their
    command lines and folders), in the work folder. ``take_finished()`` gives the strips
    whose sketch is done since the last call."""

    cancelled_message = "cancelled"

    def __init__(self, engine, jobs: list[SketchJob], model_dir: str = "", work_dir: str = "",
                 address: str = ""):
        self.jobs = {os.path.basename(job.out): job for job in jobs}
        self.root = job_folders.work_root(work_dir)
        digest = hashlib.sha1("\0".join(sorted(self.jobs)).encode()).hexdigest()[:12]
        self.shots_path = os.path.join(self.root, f"strips-{digest}.json")
        self.fractions = {name: 0.0 for name in self.jobs}
        self.finished: list[str] = []           # done, not yet taken
        self.failures: dict[str, str] = {}      # strip's out -> its one line
        self.done: list[str] = []
        self.warning = ""
        self.log = os.path.join(self.root, "batch.json")
        command = list(engine.prefix) + ["batch", self.shots_path, "--out", self.root, "--progress", "json"]
        if address:
            command += ["--address", address]
        super().__init__(command, {"DYNASKETCH_HOME": model_dir} if model_dir else {}, engine.cwd)
        self._prefix = len(engine.prefix)

    def start(self) -> str:
        try:
            os.makedirs(self.root, exist_ok=True)
            rows = []
            for job in self.jobs.values():
                job_folders.write_record(job.out, job.source.path, job.inputs)
                rows.append(shot_row(job.command, self._prefix))
            with open(self.shots_path, "w", encoding="utf-8") as f:
                json.dump(rows, f, indent=1)
        except OSError as exc:
            self._fail(f"cannot write the shot list {self.shots_path} ({exc.strerror}); choose another "
                       "Work Folder in the add-on preferences")
            return self.state
        return super().start()

    def _read(self, events) -> None:
        super()._read(events)
        for event in events:
            kind, shot = event.get("event"), event.get("shot")
            if kind == "warning":
                self.warning = in_blender_terms(str(event.get("message", "")))
            elif kind == "progress" and shot in self.fractions and event.get("shot_total"):
                self.fractions[shot] = max(self.fractions[shot], 0.95 * event["shot_done"] / event["shot_total"])
            elif kind == "shot" and shot in self.jobs:
                state = event.get("state")
                if state == "done" and shot not in self.done:
                    self.fractions[shot] = 1.0
                    self.done.append(shot)
                    self.finished.append(shot)
                    if event.get("sketch"):
                        self.jobs[shot].sketch_path = event["sketch"]
                elif state == "failed":
                    self.fractions[shot] = 1.0
                    self.failures[shot] = in_blender_terms(str(event.get("error") or "failed"))
            if kind in ("start", "progress", "shot") and self.fractions:
                self.progress = max(self.progress, sum(self.fractions.values()) / len(self.fractions))
            if kind in ("start", "progress", "shot") and event.get("message"):
                count = f"{event.get('shots_done', 0)}/{event.get('shots_total', len(self.jobs))} strips"
                self.message = f"{count}: {event['message']}"

    def cancel(self) -> None:
        """Stop the batch: it cancels its tasks, records them in batch.json and ends its Ray
        (a local one's processes with it), which takes a few seconds."""
        if self.state == RUNNING:
            self.process.stop(grace=STOP_GRACE)
            self.state, self.message = CANCELLED, self.cancelled_message

    def take_finished(self) -> list[SketchJob]:
        taken, self.finished = self.finished, []
        return [self.jobs[name] for name in taken]

    def _succeeded(self) -> None:
        self.message = f"{len(self.done)} strips sketched"

    def _fail(self, reason: str) -> None:
        if self.failures:
            name, why = next(iter(self.failures.items()))
            label = self.jobs[name].source.label
            reason = f"{len(self.failures)} of {len(self.jobs)} strips failed; {label}: {why}"
        super()._fail(reason.replace("run the same batch again", "Sketch Selected Strips again"))
