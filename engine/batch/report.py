"""The batch's progress: tqdm bars over shots and frames, JSON lines, or only the failures.

JSON lines follow docs/CONTRACT.md (``event``, ``stage``, ``done``, ``total``, ``message``;
``done``/``total`` count frames over all shots): ``start``, ``shot`` (a shot's state changed:
``shot``, ``state``, and ``sketch``, ``error``, ``machine``, ``pid``...), ``progress``,
``warning`` and ``done``; docs/BATCH.md lists them.
"""
from __future__ import annotations

import json
import sys

from ..progress import tell


class BatchReport:
    """Only the failures (one line each, on stderr); the base of the other reporters."""

    def __init__(self):
        self.parts: dict[tuple[str, str], tuple[int, int]] = {}      # (shot, part) -> (done, total)
        self.shots_total = 0
        self.shots_finished = 0
        self.reader_gone = False

    @property
    def frames(self) -> tuple[int, int]:
        done = sum(d for d, _ in self.parts.values())
        return done, sum(t for _, t in self.parts.values())

    def shot_frames(self, shot: str) -> tuple[int, int]:
        mine = [v for (s, _), v in self.parts.items() if s == shot]
        return sum(d for d, _ in mine), sum(t for _, t in mine)

    def begin(self, shots: int, message: str, root: str, record: str) -> None:
        self.shots_total = shots

    def progress(self, shot: str, part: str, stage: str, done: int, total: int, message: str) -> None:
        self.parts[(shot, part)] = (done, total)

    def shot(self, shot: str, state: str, entry: dict) -> None:
        if state in ("done", "failed"):
            self.shots_finished += 1
            if state == "done":                 # every frame of it is done
                self.parts = {k: ((t, t) if k[0] == shot else (d, t)) for k, (d, t) in self.parts.items()}
        if state == "failed":
            self.say(f"dynasketch: shot {shot}: error: {entry.get('error')}")

    def warn(self, shot: str, message: str) -> None:
        self.say(f"dynasketch: shot {shot}: warning: {message}")

    def end(self, message: str, summary: dict, event: str = "") -> None:
        """The batch's last line; ``event``: done, error or interrupted (default: by the failures)."""
        self.say(f"dynasketch: {message}")

    def say(self, text: str) -> None:
        tell(text)

    def close(self) -> None:
        pass


class JsonBatchReport(BatchReport):
    def __init__(self):
        super().__init__()
        self.stdout = sys.stdout

    def emit(self, event: str, stage: str, message: str, **extra) -> None:
        done, total = self.frames
        line = {"event": event, "stage": stage, "done": done, "total": total, "message": message,
                "shots_done": self.shots_finished, "shots_total": self.shots_total, **extra}
        if not self.reader_gone and not tell(json.dumps(line), self.stdout):
            self.reader_gone = True

    def begin(self, shots, message, root, record):
        super().begin(shots, message, root, record)
        self.emit("start", "batch", message, out=root, record=record)

    def progress(self, shot, part, stage, done, total, message):
        super().progress(shot, part, stage, done, total, message)
        shot_done, shot_total = self.shot_frames(shot)
        self.emit("progress", stage, f"{shot}: {message}" if message else shot, shot=shot, part=part,
                  shot_done=shot_done, shot_total=shot_total)

    def shot(self, shot, state, entry):
        super().shot(shot, state, entry)             # a failure's one line on stderr too
        message = f"{shot}: {state}" + (f": {entry['error']}" if state == "failed" and entry.get("error") else "")
        self.emit("shot", "batch", message, shot=shot, state=state,
                  **{k: entry.get(k) for k in ("clip", "sketch", "error", "device", "machine", "gpus", "pid",
                                              "attempts", "seconds", "frames") if k in entry})

    def warn(self, shot, message):
        self.emit("warning", "batch", f"{shot}: {message}", shot=shot)

    def end(self, message, summary, event=""):
        self.emit(event or ("done" if not summary.get("failed") else "error"), "batch", message, **summary)


class BarBatchReport(BatchReport):
    """Two tqdm bars: the shots finished, and the frames sketched over every shot."""

    def __init__(self):
        super().__init__()
        self.bars = None

    def begin(self, shots, message, root, record):
        from tqdm import tqdm

        super().begin(shots, message, root, record)
        print(message, file=sys.stderr, flush=True)
        self.bars = (tqdm(total=shots, unit="shot", desc="shots", position=0, file=sys.stderr, dynamic_ncols=True),
                     tqdm(total=0, unit="frame", desc="frames", position=1, file=sys.stderr, dynamic_ncols=True))

    def progress(self, shot, part, stage, done, total, message):
        super().progress(shot, part, stage, done, total, message)
        self._refresh(f"{shot}: {message}")

    def _refresh(self, text: str = "") -> None:
        if self.bars is None:
            return
        shots, frames = self.bars
        done, total = self.frames
        frames.total = total
        frames.update(done - frames.n)
        if text:
            frames.set_postfix_str(text[:60], refresh=False)
        shots.update(self.shots_finished - shots.n)

    def shot(self, shot, state, entry):
        if state in ("done", "failed"):
            self.shots_finished += 1
            if state == "done":
                self.parts = {k: ((t, t) if k[0] == shot else (d, t)) for k, (d, t) in self.parts.items()}
        if state == "failed":
            self.say(f"dynasketch: shot {shot}: error: {entry.get('error')}")
        self._refresh()

    def say(self, text):
        if self.bars is None:
            return super().say(text)
        self.bars[0].write(text, file=sys.stderr)

    def end(self, message, summary, event=""):
        self.close()
        super().end(message, summary, event)

    def close(self):
        if self.bars is not None:
            for bar in self.bars:
                bar.close()
            self.bars = None


def make_report(kind: str) -> BatchReport:
    return {"json": JsonBatchReport, "bar": BarBatchReport}.get(kind, BatchReport)()
