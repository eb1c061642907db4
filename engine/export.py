"""Outputs: ``sketch.json`` (see docs/CONTRACT.md), one SVG per frame, and a preview video.

``SketchFolder`` owns the output folder. It never deletes what it did not write, replaces
``sketch.json`` atomically, keeps the state needed to resume an interrupted run in
``.dynasketch/state.pt``, and lets one run at a time write it (``.dynasketch/lock``).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zlib

import numpy as np

from .errors import EngineError
from .ink.outline import outline_paths

FORMAT = "dynasketch.sketch"
VERSION = 1
REVISED_VERSION = 2          # a sketch with revisions: its stroke ids change at a revised frame
OWN_FILES = ("preview.mp4", "saliency.png")      # beside sketch.json, svg/ and the log


def _atomic_write(path: str, data: bytes) -> None:
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _lock_file(f) -> bool:
    """An exclusive lock on an open file, without waiting; False if another process holds it.
    A file system without locks (some network or FUSE mounts) lets the run go on unlocked."""
    try:
        if os.name == "nt":
            import msvcrt

            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return os.name != "nt"          # msvcrt says "held" as EACCES or EDEADLOCK
    return True


def _read_quietly(f) -> str:
    try:
        f.seek(0)
        return f.read(32).strip()
    except OSError:
        return ""


def stroke_records(points: np.ndarray, width: float, opacity: float = 1.0,
                   widths: np.ndarray | None = None, colours: np.ndarray | None = None) -> list[dict]:
    """``(N, P, 2)`` source-pixel control points -> the contract's stroke objects;
    ``widths`` ``(N, (P-1)/3+1)``: a width per on-curve point, ``colours`` ``(N, 3)``: the
    footage's colour under each stroke (``engine.ink``)."""
    records = [{"id": i, "points": [[round(float(x), 3), round(float(y), 3)] for x, y in stroke],
                "width": round(float(width), 4), "opacity": opacity}
               for i, stroke in enumerate(points)]
    if widths is not None:
        for record, row in zip(records, widths):
            record["widths"] = [round(float(w), 3) for w in row]
    if colours is not None:
        for record, rgb in zip(records, colours):
            record["colour"] = [round(float(c), 4) for c in rgb]
    return records


def svg_document(strokes: list[dict], width: int, height: int) -> str:
    outlined = outline_paths(strokes)       # variable width: the filled shape each stroke covers
    paths = []
    for s in strokes:
        pts = s["points"]
        if s["id"] in outlined:
            paths.append(f'  <path id="stroke-{s["id"]}" d="{outlined[s["id"]]}" fill="black" '
                         f'fill-opacity="{s["opacity"]}" stroke="none"/>')
            continue
        d = f"M {pts[0][0]} {pts[0][1]}" + "".join(
            f" C {a[0]} {a[1]} {b[0]} {b[1]} {c[0]} {c[1]}"
            for a, b, c in zip(pts[1::3], pts[2::3], pts[3::3]))
        paths.append(f'  <path id="stroke-{s["id"]}" d="{d}" fill="none" stroke="black" '
                     f'stroke-width="{s["width"]}" stroke-opacity="{s["opacity"]}" '
                     f'stroke-linecap="round" stroke-linejoin="round"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n'
            f'  <rect width="{width}" height="{height}" fill="white"/>\n'
            + "\n".join(paths) + "\n</svg>\n")


class SketchFolder:
    def __init__(self, path: str, header: dict, fingerprint: dict, overwrite: bool = False):
        self.path = os.path.abspath(path)
        self.sketch_path = os.path.join(self.path, "sketch.json")
        self.state_path = os.path.join(self.path, ".dynasketch", "state.pt")
        self.header = header
        self.fingerprint = fingerprint
        self.frames: list[dict] = []
        self.overwrite = overwrite
        self.replacing = False
        self.rebuilt = False            # sketch.json was damaged and rebuilt from the resume state
        self.earlier: dict = {}         # the earlier run's settings and revisions (engine/revisions/)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise EngineError(f"--out {path}: exists and is not a folder; choose a folder")

    # -- one run at a time -----------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self):
        """Hold the folder for this run: a second run on it (another terminal, a second Blender)
        is refused with one line rather than both writing the same sketch. The lock is the
        operating system's, on ``.dynasketch/lock``, so it ends with the process however that
        ends. If the run fails before writing anything, the folders it made for the lock go."""
        state_dir = os.path.join(self.path, ".dynasketch")
        lock_path = os.path.join(state_dir, "lock")
        made = [d for d in (self.path, state_dir) if not os.path.exists(d)]
        try:
            os.makedirs(state_dir, exist_ok=True)
            lock = open(lock_path, "a+")
        except OSError as exc:
            raise EngineError(f"--out {self.path}: cannot create the folder ({exc.strerror})") from None
        try:
            if not _lock_file(lock):
                holder = _read_quietly(lock)
                raise EngineError(f"--out {self.path}: another dynasketch run"
                                  f"{f' (process {holder})' if holder.isdigit() else ''} is writing there; "
                                  "wait for it to finish or stop it, or choose another folder")
            lock.truncate(0)
            lock.write(str(os.getpid()))
            lock.flush()
            yield
            made = []
        finally:
            if state_dir in made and os.listdir(state_dir) == ["lock"]:   # failed before writing
                with contextlib.suppress(OSError):
                    os.unlink(lock_path)
                for folder in reversed(made):
                    with contextlib.suppress(OSError):
                        os.rmdir(folder)                                # only if left empty
            lock.close()

    # -- resuming ------------------------------------------------------------------------
    def check_existing(self) -> dict | None:
        """The saved state of an earlier run of the same job, or None to start afresh.

        Refuses (unless overwrite) to touch a folder holding a different sketch.
        """
        if not os.path.exists(self.sketch_path):
            return None
        try:
            with open(self.sketch_path) as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = None
        state = self._load_state()
        if not isinstance(old, dict) and not self.overwrite:
            old = self._rebuild(state)
        same = (state is not None and old is not None
                and state.get("fingerprint") == self.fingerprint)
        if not same:
            if self.overwrite:
                self.replacing = True           # its files go once this run has loaded (prepare)
                return None
            made = "from other settings or input"
            if state is not None and old is not None:
                made = self._other_backends(state.get("fingerprint") or {}) or made
            raise EngineError(f"--out {self.path}: holds a sketch made {made}; choose another "
                              "folder, or add --overwrite to replace it")
        done = int(state["done"])
        self.frames = old.get("frames", [])[:done]
        self.earlier = {key: old[key] for key in ("settings", "revisions") if key in old}
        if "revisions" in old:                      # the record goes on (docs/CONTRACT.md)
            self.header["revisions"] = list(old["revisions"])
        return state

    def _rebuild(self, state: dict | None) -> dict:
        """A ``sketch.json`` cut short or garbled by something outside the engine: rebuilt from
        the copy in the resume state when that is intact and of this job; else one line naming it."""
        saved = None if state is None else state.get("sketch")
        if saved is not None and state.get("fingerprint") == self.fingerprint:
            try:
                doc = json.loads(zlib.decompress(saved))
            except (zlib.error, ValueError):
                doc = None
            if isinstance(doc, dict):
                _atomic_write(self.sketch_path, json.dumps(doc, separators=(",", ":")).encode())
                self.rebuilt = True
                return doc
        why = ("its resume state is of other settings or input" if saved is not None
               else "there is no intact resume state to rebuild it from")
        raise EngineError(f"--out {self.path}: {self.sketch_path} is damaged (not a whole JSON file) and "
                          f"{why}; add --overwrite to sketch again, or choose another folder")

    def _other_backends(self, before: dict) -> str:
        """When only the backends differ (``auto`` found or lost weights since): which."""
        keys = before.keys() | self.fingerprint.keys()
        if [k for k in keys if before.get(k) != self.fingerprint.get(k)] != ["backends"] \
                or not isinstance(before.get("backends"), dict):
            return ""
        was, now = before["backends"], self.fingerprint["backends"]
        stages = [stage for stage in now if was.get(stage) != now[stage]]
        return (f"with {', '.join(f'{stage} {was.get(stage)}' for stage in stages)}; this run would use "
                f"{', '.join(f'{stage} {now[stage]}' for stage in stages)}")

    def _load_state(self) -> dict | None:
        import torch

        try:
            return torch.load(self.state_path, map_location="cpu", weights_only=True)
        except Exception:
            return None

    # -- writing -------------------------------------------------------------------------
    def prepare(self) -> None:
        try:
            os.makedirs(os.path.join(self.path, "svg"), exist_ok=True)
            os.makedirs(os.path.dirname(self.state_path), exist_ok=True)
            if self.replacing:
                self._remove_replaced_sketch()
        except OSError as exc:
            raise EngineError(f"--out {self.path}: cannot create the folder ({exc.strerror})") from None

    def _remove_replaced_sketch(self) -> None:
        """``--overwrite``: the replaced sketch's own files (not the log, nor anything else in
        the folder), so no SVG or preview of it is left beside the new one. ``sketch.json``
        goes first: a stop before the new sketch's first frame leaves no sketch, not a broken one."""
        svg = os.path.join(self.path, "svg")
        old = [self.sketch_path, self.state_path, *(os.path.join(self.path, name) for name in OWN_FILES)]
        old += [os.path.join(svg, name) for name in sorted(os.listdir(svg))
                if name.startswith("frame_") and name.endswith(".svg")]
        for path in old:
            if os.path.isfile(path):
                os.unlink(path)
        self.replacing = False

    def add_frame(self, index: int, strokes: list[dict], mask_note: str | None = None) -> None:
        """Frame ``index``'s strokes; ``mask_note``: why its mask was not trusted (``masks.trust``)."""
        self.frames.append({"index": int(index), "strokes": strokes, **({"mask_note": mask_note} if mask_note else {})})
        svg = svg_document(strokes, self.header["width"], self.header["height"])
        _atomic_write(os.path.join(self.path, "svg", f"frame_{index:06d}.svg"), svg.encode())

    def save_map(self, name: str, values) -> str:
        """A map ``(H, W)`` (e.g. the saliency of the first frame) as a grey PNG, max = white."""
        from PIL import Image

        arr = values.detach().float().cpu().numpy()
        arr = arr / max(float(arr.max()), 1e-12)
        path = os.path.join(self.path, name)
        Image.fromarray((arr * 255).round().astype(np.uint8)).save(path)
        return path

    def save(self, state: dict, complete: bool) -> None:
        """Write ``sketch.json`` then the resume state, each atomically.

        A stop between the two leaves ``sketch.json`` ahead of the state; resuming trims it
        back to the state's frame count, so the folder is always consistent.
        """
        import io

        import torch

        doc = {"format": FORMAT, "version": REVISED_VERSION if self.header.get("revisions") else VERSION, **self.header,
               "complete": complete, "frames": self.frames}
        data = json.dumps(doc, separators=(",", ":")).encode()
        _atomic_write(self.sketch_path, data)
        buffer = io.BytesIO()
        # with a copy of sketch.json, to rebuild it if something outside the engine damages it
        torch.save({**state, "fingerprint": self.fingerprint, "done": len(self.frames),
                    "sketch": zlib.compress(data, 1)}, buffer)
        _atomic_write(self.state_path, buffer.getvalue())
