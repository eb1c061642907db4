"""The add-on's job folders in the work folder: recording what each is for, and removing them.

A job folder holds the engine's output for one clip, its settings and its input files as
they were (``sketch_job.output_folder``). The add-on writes ``dynasketch-job.json`` in it
when the job starts: only folders holding that record are ever removed, and never one that
an engine is writing (it holds ``.dynasketch/lock``). The scene's strokes do not depend on
these folders; they only let a job resume. Standard library only.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

RECORD = "dynasketch-job.json"
STAGING = ".mask-"               # a Blender Mask rendered for a job about to start (subject.py)


def work_root(work_dir: str = "") -> str:
    """Where job folders go: the Work Folder preference, else the system's temp folder."""
    return work_dir or os.path.join(tempfile.gettempdir(), "dynasketch")


def file_stamp(path: str) -> str:
    """Size and modification time of a file, or of each file in a folder: what changes when
    it is saved again."""
    if os.path.isdir(path):
        return ",".join(f"{e.name}:{file_stamp(e.path)}" for e in sorted(os.scandir(path), key=lambda e: e.name)
                        if e.is_file())
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def input_stamps(paths: list[str]) -> dict[str, str]:
    """The stamps of those of ``paths`` that are input files (absolute and present)."""
    return {p: file_stamp(p) for p in paths if os.path.isabs(p) and os.path.exists(p)}


def write_record(folder: str, source_path: str, inputs: dict[str, str], arguments: list[str] | None = None) -> None:
    """``arguments``: the engine's (``sketch INPUT --out DIR ...``), which a revision repeats (revise.py)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, RECORD), "w", encoding="utf-8") as f:
        json.dump({"source": source_path, "inputs": inputs, **({"arguments": arguments} if arguments else {})}, f)


def read_record(folder: str) -> dict:
    """The record of a job folder, or {} where there is none."""
    try:
        with open(os.path.join(folder, RECORD), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


@dataclass
class JobFolder:
    path: str
    inputs: dict                # input file -> its stamp when the job started

    def stale(self) -> bool:
        """An input file saved again since (a re-export): this job can never resume, since
        the same settings now make a new job. A file that is missing (a drive not mounted)
        does not count."""
        for path, stamp in self.inputs.items():
            try:
                if file_stamp(path) != stamp:
                    return True
            except OSError:
                continue
        return False

    def size(self) -> int:
        total = 0
        for folder, _, files in os.walk(self.path):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(folder, name)).st_size
        return total


def job_folders(root: str) -> list[JobFolder]:
    """The job folders the add-on made under ``root`` (those holding its record)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            try:
                with open(os.path.join(entry.path, RECORD), encoding="utf-8") as f:
                    record = json.load(f)
                found.append(JobFolder(entry.path, dict(record["inputs"])))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
    return found


def in_use(folder: str) -> bool:
    """Whether an engine is writing ``folder`` (it holds the folder's lock)."""
    try:
        f = open(os.path.join(folder, ".dynasketch", "lock"), "r+")
    except FileNotFoundError:                      # no engine ever ran there
        return False
    except OSError:
        return True
    with f:
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
    return False


def remove(job: JobFolder) -> bool:
    """Remove a job folder unless an engine is writing it; True if it is gone."""
    if in_use(job.path):
        return False
    shutil.rmtree(job.path, ignore_errors=True)
    return not os.path.exists(job.path)


def remove_leftovers(root: str, older_than: float = 3600.0) -> None:
    """Remove the mask images rendered for a job that never started (Blender ended between
    the render and the engine's start): a job moves them into its folder within seconds."""
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            with contextlib.suppress(OSError):
                if entry.name.startswith(STAGING) and entry.is_dir() and now - entry.stat().st_mtime > older_than:
                    shutil.rmtree(entry.path, ignore_errors=True)


def remove_stale(root: str) -> list[str]:
    """Remove the job folders whose input files were saved again since: they can never
    resume (and masks rendered for jobs that never started). Returns the folders removed."""
    remove_leftovers(root)
    return [job.path for job in job_folders(root) if job.stale() and remove(job)]


def remove_all(root: str) -> tuple[int, int, int]:
    """Remove every job folder no engine is writing: (removed, bytes freed, left in use)."""
    remove_leftovers(root)
    removed = freed = busy = 0
    for job in job_folders(root):
        size = job.size()
        if remove(job):
            removed, freed = removed + 1, freed + size
        else:
            busy += 1
    return removed, freed, busy
