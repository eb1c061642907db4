"""The sketch job, stage by stage: decode -> mask -> track -> initialise -> optimise -> export.

``run_sketch(job, progress, should_stop)`` streams the clip; the first frame is sketched
from scratch (``initialise``), later frames in windows of ``settings.window`` frames that
start from the previous frame's strokes moved along the tracks (``optimise``). After each
window the output folder is brought up to date, so a stop at any time leaves it
consistent, and the same command resumes after the last finished frame. With
``job.revise`` an artist's edited frame replaces the sketch's and the run goes on from it,
as a resume would (``revisions``).
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from . import revisions
from .canvas import Letterbox, SubjectFraming, subject_pixels
from .devices import pick_device
from .colour import ShownColours
from .errors import EngineError, Interrupted
from .export import SketchFolder, stroke_records
from .ink import StrokeInk
from .backends import build_guidance, build_rasterizer, build_saliency, build_tracker, choose_backends
from .lines import extract_lines
from .losses import find_groups
from .masks import build_masker, mask_file_identity, require_masker_weights
from .masks.subject import resolve_boxes
from .optimise import StrokeOptimiser
from .prefetch import Prefetcher
from .preview import write_preview
from .settings import Settings
from .temporal import across, crossings, duplicates, knotted, lengthened, off_lines, scaled_anchor
from .temporal.checks import CROSSED, TIPS
from .tracking import STRAY, grid_queries, solid_and_thin, thin_parts_with_grid, with_grid_fallback
from .video import FrameRange, open_video, parse_frame_range


@dataclass
class Job:
    input: str
    out: str
    settings: Settings
    frames: str | None = None
    fps: float | None = None
    overwrite: bool = False
    preview: bool = True
    start_number: int | None = None          # an image pattern's first image (see open_video)
    colorspace: str | None = None            # the footage's colour space in Blender (engine/colour.py)
    ocio_config: str | None = None           # the OpenColorIO config it is from (None: $OCIO)
    revise: str | None = None                # an edited frame to re-sketch forward from (engine/revisions/)
    # Strokes (N, P, 2), source pixels, for the first frame: kept there, the later frames go on
    # from them (a chunk of a long shot starts from its keyframe's strokes: engine/batch/chunks.py)
    first_strokes: list | None = None


@dataclass
class CanvasFrame:
    """One source frame on the working canvas."""

    index: int
    box: Letterbox                 # where the canvas shows the source frame (canvas.py)
    image: torch.Tensor            # (3, C, C) in [0, 1], on the device
    mask: torch.Tensor | None      # (1, C, C) in {0, 1}
    track_image: np.ndarray        # (2C, 2C, 3) uint8 RGB, for the tracker
    framing: tuple | None = None   # SubjectFraming's state after this frame (for a resume)
    rgb: np.ndarray | None = None  # (C, C, 3) uint8: the canvas image, for line extraction
    masked: bool = False           # whether ``mask`` is the subject's (else the frame, or None)
    lines: object = None           # engine.lines.Lines, once extracted (Sketcher.lines_of)


def masked_frames(source, frame_range, masker, framing: SubjectFraming) -> Iterator[tuple]:
    """Decode and mask, fitting each frame onto its canvas window (``framing``: around the
    subject where there is a mask) and a 2x one for tracking, on the CPU side:
    ``(index, box, rgb, mask or None, track_rgb, framing state)``. Runs in the prefetch thread."""
    for index, rgb, alpha in source.frames(frame_range):
        mask = masker(index, rgb, alpha)
        box = framing(mask)
        yield (index, box, box.fit(rgb), None if mask is None else box.fit(mask, fill=0),
               box.resized(2 * box.size).fit(rgb), framing.state)


class CanvasFrames:
    """``masked_frames`` as ``CanvasFrame`` tensors on ``device``, produced up to ``ahead``
    frames in advance in a background thread (``prefetch.Prefetcher``) when ``ahead`` > 0.
    The thread starts at once, so a neural masker loads its network and masks the first
    frames while the caller loads the other models. A stop is honoured between frames and,
    with a thread, while waiting for a frame (a neural masker can take seconds per frame);
    ``close()`` ends the thread."""

    def __init__(self, source, frame_range, masker, framing: SubjectFraming, device,
                 should_stop: Callable[[], bool] = lambda: False, ahead: int = 0):
        produced = masked_frames(source, frame_range, masker, framing)
        self.items = Prefetcher(produced, ahead, device, should_stop) if ahead else produced
        self.frames = self._to_device(device, should_stop)

    def _to_device(self, device, should_stop) -> Iterator[CanvasFrame]:
        faded: dict = {}                 # the frame on its canvas, per window, without a mask
        for index, box, image, mask, track_image, framing in self.items:
            if should_stop():
                raise Interrupted()
            if mask is not None:
                m = torch.from_numpy(subject_pixels(mask)).to(device)[None]
            else:                                       # without a mask the subject is the frame
                if box not in faded:
                    area = torch.from_numpy(box.faded()).to(device)[None]
                    faded[box] = None if bool((area == 1).all()) else area
                m = faded[box]
            rgb = image
            image = torch.from_numpy(image).to(device).permute(2, 0, 1).float() / 255.0
            yield CanvasFrame(index, box, image, m, track_image, framing, rgb, mask is not None)

    def __iter__(self):
        return self

    def __next__(self) -> CanvasFrame:
        try:
            return next(self.frames)
        except StopIteration:
            raise
        except BaseException:          # a stop or an error: the thread stops, unwaited for
            self.close(timeout=0)
            raise

    def close(self, timeout: float | None = None) -> None:
        """Stop decoding and masking; with a ``timeout``, wait at most that long for the
        frame the thread is masking (a stop or an error need not wait for it)."""
        self.frames.close()
        if isinstance(self.items, Prefetcher):
            self.items.close(timeout)
        else:
            self.items.close()


class Sketcher:
    """Holds the stages of one job and sketches frames; see the module docstring."""

    def __init__(self, settings: Settings, device: torch.device,
                 should_stop: Callable[[], bool], chosen: dict):
        """``chosen``: each stage's backend by name (``backends.choose_backends``)."""
        self.s = settings
        self.device = device
        self.should_stop = should_stop
        self.tracker = build_tracker(chosen["tracker"], device)
        self.optimiser = StrokeOptimiser(settings, build_rasterizer(device),
                                         build_guidance(chosen["guidance"], device),
                                         build_saliency(chosen["saliency"], device), should_stop)
        self.restarted = 0                 # strokes re-initialised in the last window
        self.reseeds = 0                   # strokes re-seeded in the whole run
        self.anchor = None                 # (N,) each stroke's length on its keyframe
        self.anchor_size = None            # (N,) the subject's diagonal when it was set
        self.no_lines: list[int] = []      # frames of the last window with no lines to draw
        self.locked: torch.Tensor | None = None   # (N,) strokes kept as drawn (revisions), or None

    def lines_of(self, frames: list[CanvasFrame]) -> list | None:
        """Each frame's lines (``engine.lines``), extracted once per frame; None where the
        guidance does not start on lines."""
        if not self.optimiser.on_lines:
            return None
        for f in frames:
            if f.lines is None:          # without a mask of its own the subject is the frame
                mask = f.mask[0].cpu().numpy() > 0.5 if f.masked else None
                f.lines = extract_lines(f.rgb, mask, f.box.inside())
        return [f.lines for f in frames]

    def frame_on(self, frames: list[CanvasFrame]) -> None:
        """Keep the optimiser's control points on the canvas pixels that show these frames."""
        areas = np.array([f.box.frame_area() for f in frames])
        x0, y0 = areas[:, :2].max(0).tolist()          # on every one of them
        x1, y1 = areas[:, 2:].min(0).tolist()
        if x1 <= x0 or y1 <= y0:
            x0, y0, x1, y1 = 0, 0, frames[0].box.size, frames[0].box.size
        self.optimiser.area = (x0, y0, x1, y1)

    def generator(self, index: int) -> torch.Generator:
        """Random numbers tied to the frame, so a resumed run continues the same way."""
        g = torch.Generator(device=self.device)
        g.manual_seed(self.s.seed * 1_000_003 + index)
        return g

    def check_stop(self) -> None:
        if self.should_stop():
            raise Interrupted()

    def first(self, frame: CanvasFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """Strokes ``(N, P, 2)`` for the first frame, best of the seeds, and the saliency
        map ``(C, C)`` their starting points were drawn from."""
        mask = None if frame.mask is None else frame.mask[None]
        self.frame_on([frame])
        saliency = self.optimiser.saliency(frame.image[None], mask)
        strokes, _ = self.optimiser.keyframe(frame.image[None], mask, self.generator(frame.index),
                                             saliency=saliency, lines=self.lines_of([frame]))
        self.check_stop()
        if frame.lines is not None and self.s.repair_steps > 0:
            strokes = self.repaired_keyframe(frame, mask, strokes)
        self.anchor = self.optimiser.lengths(strokes[0]).detach()
        if frame.lines is not None:
            self.anchor_size = self.anchor.new_full(self.anchor.shape, max(frame.lines.diagonal, 1.0))
        return strokes[0], saliency[0]

    def repaired_keyframe(self, frame: CanvasFrame, mask, strokes: torch.Tensor) -> torch.Tensor:
        """The keyframe's strokes ``(1, N, P, 2)`` held to a window's second pass (``knotted``):
        one drawn over another's line (a string drawn twice), knotted or off the lines is
        re-seeded where nothing is drawn yet and refined."""
        opt = self.optimiser
        shared_before = torch.zeros(strokes.shape[:2], dtype=torch.bool, device=strokes.device)  # no frame before
        lost = knotted(opt.samples(strokes), strokes, [frame.lines], shared_before)    # (1, N)
        if not lost.any():
            return strokes
        fresh = opt.reseed(frame.image[None], mask, strokes, lost, self.generator(frame.index),
                           [frame.lines], count=int(lost.sum()))
        self.check_stop()
        return fresh

    def independent(self, frames: list[CanvasFrame]) -> torch.Tensor:
        """``--no-temporal``: every frame from scratch, one seed each, ``(W, N, P, 2)``."""
        images, masks = self._stack(frames)
        self.frame_on(frames)
        strokes, _ = self.optimiser.keyframe(images, masks, self.generator(frames[0].index), seeds=1,
                                             lines=self.lines_of(frames))
        self.check_stop()
        return strokes

    def track(self, video: np.ndarray, points: torch.Tensor, boxes: list[Letterbox],
              start: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Track canvas points ``(Q, 2)`` (given on frame 0, or on ``start`` ``(Q,)``) through
        2x canvas frames (each frame's canvas window ``boxes``); canvas tracks ``(T, Q, 2)``
        and visibility ``(T, Q)`` (off the frame counts as not seen)."""
        tracks, visible = self.tracker.track(video, points.detach().cpu().numpy() * 2.0, start)
        area = np.array([b.resized(2 * b.size).frame_area() for b in boxes], np.float64)[:, None]
        on_frame = ((tracks[..., 0] >= area[..., 0]) & (tracks[..., 0] <= area[..., 2] - 1)
                    & (tracks[..., 1] >= area[..., 1]) & (tracks[..., 1] <= area[..., 3] - 1))
        return (torch.from_numpy(tracks / 2.0).to(self.device),
                torch.from_numpy(visible & on_frame).to(self.device))

    def window(self, previous: CanvasFrame, strokes: torch.Tensor,
               frames: list[CanvasFrame]) -> torch.Tensor:
        """Strokes ``(W, N, P, 2)`` for ``frames``, continuing from ``strokes`` on ``previous``."""
        s, opt = self.s, self.optimiser
        n, m, w = strokes.shape[0], s.track_points, len(frames)
        video = np.stack([previous.track_image] + [f.track_image for f in frames])
        boxes = [previous.box] + [f.box for f in frames]
        self.frame_on([previous] + frames)
        points = opt.samples(strokes)                                          # (N, M, 2)
        # The strokes' points and a grid inside the subject's solid parts (on the frame before
        # the window) are tracked together; a stroke point the tracker loses goes on with the
        # grid, and so does one on a thin part (a string, a strap) whose track strays from the
        # solid parts' motion: the tracker's window there sees mostly what lies behind it.
        solid, thin = solid_and_thin(previous.mask)
        grid = grid_queries(solid, opt.area, s.track_grid, device=self.device)
        both, seen = self.track(video, torch.cat([points.reshape(-1, 2), grid]), boxes)
        grid_tracks, grid_visible = both[:, n * m:], seen[:, n * m:]
        tracks, visible = with_grid_fallback(both[:, :n * m], seen[:, :n * m], grid_tracks, grid_visible)
        if thin is not None:
            tracks, visible = thin_parts_with_grid(tracks, visible, points.reshape(-1, 2), thin,
                                                   grid_tracks, grid_visible, STRAY * opt.unit)
        tracks, visible = tracks.view(w + 1, n, m, 2), visible.view(w + 1, n, m)
        init = self._follow(strokes, tracks, visible)
        groups = find_groups(points, s.touch * opt.unit)
        images, masks = self._stack(frames)
        lines = self.lines_of(frames)
        if self.anchor is None:
            self.anchor = opt.lengths(strokes).detach()
        if lines is None:
            anchor = self.anchor.expand(w, n).clone()                          # (W, N)
        else:                       # the keyframe lengths grow and shrink with the subject
            if self.anchor_size is None:                                       # a resumed run
                before = self.lines_of([previous])[0]
                self.anchor_size = self.anchor.new_full((n,), max(before.diagonal, 1.0))
            anchor = scaled_anchor(self.anchor, self.anchor_size, lines)

        # Re-initialise strokes whose points are mostly lost, or (on lines) that the tracks
        # carried off the frame's lines, from the first frame they are: new strokes for
        # every such frame, refined together, then tracked (one call, each from its own frame).
        lost = visible.float().mean(-1) < s.lost_fraction                     # (W+1, N)
        self.no_lines = []
        if lines is not None:       # on lines, a stroke the tracker lost may still lie on its line
            carried = opt.samples(init)
            off, outside = off_lines(carried, lines, s.reseed_distance)
            # two strokes the tracks carried onto one line (a thin part; not two that shared it on
            # the frame before, where lines converge), a stroke carried into a knot (crossing
            # others along its length, not where strokes meet at their ends), ...
            before = self.lines_of([previous])
            doubled_before = duplicates(strokes[None], before)                 # (1, N)
            tangled = ((duplicates(init, lines) & ~doubled_before)
                       | (crossings(init, ends=TIPS) >= CROSSED)
                       | lengthened(init, anchor)                              # longer than the subject grew
                       | across(carried, lines))                               # across close lines, not along
            lost[1:] = (lost[1:] & outside) | off | tangled
            self.no_lines = [f.index for f, item in zip(frames, lines) if item.empty]
        restart = torch.zeros(w, n, dtype=torch.bool, device=self.device)
        growth = None if lines is None else torch.tensor([max(item.diagonal, 1.0) for item in lines],
                                                         device=self.device)
        trainable = None if self.locked is None else (~self.locked).expand(w, n)
        result = init
        # Two passes on lines: what the optimisation itself knotted, drew twice or left off the
        # lines is re-seeded from the first frame it is, and the window optimised once more for
        # ``repair_steps`` (never worse than drawing each frame on its own; not in the fast preset).
        for attempt in range(2 if lines is not None and s.repair_steps > 0 else 1):
            if attempt:
                lost = torch.zeros(w + 1, n, dtype=torch.bool, device=self.device)
                lost[1:] = knotted(opt.samples(result), result, lines, doubled_before)
                init = result.detach().clone()
            lost[0] = False
            if self.locked is not None:             # strokes kept as drawn are never re-seeded
                lost[:, self.locked] = False
            if attempt and not lost.any():
                break
            first_lost = torch.where(lost.any(0), lost.float().argmax(0), 0)       # (N,)
            lost_at = sorted(set(first_lost[first_lost > 0].tolist()))             # window frame + 1
            if lost_at:
                at = [j - 1 for j in lost_at]                                      # index in frames
                which = torch.stack([first_lost == j for j in lost_at])            # (J, N)
                image, mask = images[at], None if masks is None else masks[at]
                at_lines = None if lines is None else [lines[t] for t in at]
                fresh = opt.reseed(image, mask, init[at], which, self.generator(frames[at[0]].index), at_lines)
                self.check_stop()
                counts = which.sum(1).tolist()                                     # strokes per frame
                queries = opt.samples(fresh[which]).reshape(-1, 2)                 # (sum k * M, 2)
                starts = np.repeat(np.array(lost_at), np.array(counts) * m)
                all_tracks, all_visible = self.track(video, queries, boxes, starts)
                first_column = np.cumsum([0] + counts[:-1]) * m
                for i, (j, k) in enumerate(zip(lost_at, counts)):
                    t, mine = j - 1, which[i]
                    columns = slice(int(first_column[i]), int(first_column[i]) + k * m)
                    new_tracks, new_visible = with_grid_fallback(all_tracks[j:, columns], all_visible[j:, columns],
                                                                 grid_tracks, grid_visible, start=j)
                    tracks[j:, mine] = new_tracks.view(-1, k, m, 2)
                    visible[j:, mine] = new_visible.view(-1, k, m)
                    init[t, mine] = fresh[i, mine]
                    init[t + 1:, mine] = self._follow(fresh[i, mine], tracks[j:, mine], visible[j:, mine])
                    anchor[t:, mine] = opt.lengths(fresh[i, mine]).detach() * (
                        1.0 if lines is None else growth[t:, None] / growth[t])
                restart[at] |= which
                groups = torch.where(which.any(0), n + torch.arange(n, device=groups.device), groups)
            result, _ = opt.window(images, masks, init, strokes, tracks[1:], visible[1:], groups, restart,
                                   lines, anchor, trainable=trainable,
                                   steps=None if not attempt else s.repair_steps)
        self.restarted = int(restart.sum())
        self.reseeds += self.restarted
        self.anchor = anchor[-1]
        if lines is not None:
            self.anchor_size = self.anchor.new_full((n,), max(lines[-1].diagonal, 1.0))
        self.check_stop()
        return result

    @staticmethod
    def _follow(strokes: torch.Tensor, tracks: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Move strokes ``(N, P, 2)`` with their points' tracks ``(T, N, M, 2)`` since frame 0.

        Per stroke and frame, the similarity (shift, turn, zoom) that best carries the points
        seen on both frames; a stroke with under two such points only shifts (or stays).
        Returns ``(T-1, N, P, 2)``.
        """
        w = (visible[1:] & visible[:1]).to(tracks.dtype)                  # (T-1, N, M)
        count = w.sum(-1, keepdim=True).clamp_min(1.0)
        src_c = (tracks[:1] * w[..., None]).sum(-2) / count               # (T-1, N, 2)
        dst_c = (tracks[1:] * w[..., None]).sum(-2) / count
        s = tracks[:1] - src_c[..., None, :]
        d = tracks[1:] - dst_c[..., None, :]
        norm = (w * s.square().sum(-1)).sum(-1).clamp_min(1e-6)
        a = (w * (s * d).sum(-1)).sum(-1) / norm
        b = (w * (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0])).sum(-1) / norm
        zoom = torch.sqrt(a * a + b * b).clamp(0.8, 1.25)
        turn = torch.atan2(b, a)
        rigid = (w.sum(-1) >= 2).to(tracks.dtype)
        c = torch.where(rigid > 0, zoom * torch.cos(turn), torch.ones_like(zoom))[..., None]
        si = torch.where(rigid > 0, zoom * torch.sin(turn), torch.zeros_like(zoom))[..., None]
        p = strokes[None] - src_c[..., None, :]
        moved = torch.stack([c * p[..., 0] - si * p[..., 1], si * p[..., 0] + c * p[..., 1]], -1)
        return moved + dst_c[..., None, :]

    @staticmethod
    def _stack(frames: list[CanvasFrame]):
        images = torch.stack([f.image for f in frames])
        if any(f.mask is None for f in frames):
            return images, None
        return images, torch.stack([f.mask for f in frames])


def out_of_memory(device: torch.device) -> str:
    """What to do when the run's device is out of memory (finished frames are kept)."""
    where = "the GPU" if device.type == "cuda" else "this computer"
    if device.type == "cuda":
        try:
            free, total = torch.cuda.mem_get_info(device)
            where += f" ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free now)"
        except Exception:  # the figure is only a help
            pass
        fix = ("close other programs that use it (a Blender viewport does too), or run with "
               "--device cpu (much slower)")
    else:
        fix = "close other programs, or sketch fewer --strokes or a smaller clip"
    return (f"out of memory on {where}; {fix}. Finished frames are kept: run the same command "
            "again to go on")


def run_sketch(job: Job, progress, should_stop: Callable[[], bool] = lambda: False) -> dict:
    """Run (or resume) a sketch job; returns a summary. Raises EngineError / Interrupted."""
    s = job.settings
    colour = ShownColours(job.colorspace, job.ocio_config) if job.colorspace else None
    source = open_video(job.input, job.fps, job.start_number, colour)
    info = source.info
    frame_range = parse_frame_range(job.frames, info.frame_count)
    device = pick_device(s.device)
    header = {"width": info.width, "height": info.height, "fps": info.fps,
              "source": {"path": os.path.abspath(info.path), "frames": frame_range.as_list()}}
    notes: list[str] = []                 # why `auto` took an offline default, for the log
    if s.subject:                         # the artist's boxes, checked before the folder is touched
        s.subject = resolve_boxes(s.subject, info.width, info.height, frame_range)
    chosen = choose_backends(s, info.has_alpha, device, notes)
    require_masker_weights(chosen["mask"])      # missing weights: one line, the folder untouched
    edits = None
    if job.revise:                        # the edit, checked before the folder is touched
        if not s.temporal:
            raise EngineError("--revise carries an edit through the frames after it: a --no-temporal "
                              "sketch has no such frames; sketch the edited frames again instead")
        edits = revisions.read_edits(job.revise)
        revisions.check_before_the_run(job.out, edits, os.path.abspath(info.path), job.overwrite)
    # A resumed run continues the same job: the same input, settings and backends (weights
    # found since the run started would change what `auto` picks).
    fingerprint = {**s.fingerprint(os.path.abspath(info.path), frame_range.as_list()),
                   "clip": source.identity(), "backends": chosen}
    if job.start_number is not None:      # an image sequence read from its image start_number
        header["source"]["start_number"] = fingerprint["start_number"] = job.start_number
    if source.colour is not None:         # shown from its colour space (the clip's identity holds it)
        header["source"]["colorspace"] = source.colour.name
    if (mask_file := mask_file_identity(s.mask, s.mask_start_number)) is not None:   # an edited mask is other input
        fingerprint["mask_file"] = mask_file
    if job.first_strokes is not None and np.shape(job.first_strokes)[0] != s.strokes:
        raise EngineError(f"{np.shape(job.first_strokes)[0]} first strokes given for --strokes {s.strokes}")
    if job.first_strokes is not None:     # other first strokes are another job
        fingerprint["first_strokes"] = np.asarray(job.first_strokes, np.float64).round(3).tolist()
    folder = SketchFolder(job.out, header, fingerprint, job.overwrite)
    with folder.locked():                 # one run at a time writes a folder
        return _sketch_into(folder, job, source, frame_range, device, chosen, notes, progress, should_stop, edits)


def _sketch_into(folder: SketchFolder, job: Job, source, frame_range: FrameRange, device: torch.device,
                 chosen: dict, notes: list[str], progress, should_stop: Callable[[], bool],
                 edits: "revisions.Edits | None" = None) -> dict:
    """``run_sketch`` once the folder is this run's: resume or start afresh, then the frames.
    With ``edits`` the frames after the edited one are sketched again from it (revisions/)."""
    s, info, header = job.settings, source.info, folder.header
    state = folder.check_existing()
    if folder.rebuilt:
        notes.append(f"{folder.sketch_path} was damaged; rebuilt from the resume state")
    if edits is not None:
        state = revisions.revise(folder, state, edits, len(frame_range))
        if state is None:                 # the same edit as the last revision: nothing changes
            return {"sketch": folder.sketch_path, "frames": len(folder.frames), "preview": None,
                    "out": folder.path, "reseeds": 0, "computed": 0,
                    "mask_flags": sum("mask_note" in f for f in folder.frames)}
    # Which strokes go on (ids, locks, the artist's points), and each frame's framing, for a revision.
    carried = revisions.StrokeSet.from_state(state, s.strokes)
    history: dict = dict((state or {}).get("history") or {})
    computed = [0]                        # frames sketched by this run
    # A resumed run decodes and masks from its last finished frame on, not from the start.
    todo = frame_range
    if state is not None and folder.frames:
        todo = FrameRange(folder.frames[-1]["index"], frame_range.stop, frame_range.step)
    follow_from = None if state is None else state.get("subject_box")
    masker = build_masker(chosen["mask"], source, todo, device, s.mask_start_number, s.subject, follow_from)
    flags = getattr(masker, "notes", {})          # the trust check's notes, by frame index
    # A resumed run goes on framing the subject from the window its last frame had.
    framing = SubjectFraming(info.width, info.height, s.canvas, follow=s.framing == "subject",
                             state=None if state is None else state.get("framing"))
    ahead = s.window if os.environ.get("DYNASKETCH_PREFETCH", "1") != "0" else 0
    decoded = CanvasFrames(source, todo, masker, framing, device, should_stop, ahead)
    stream: Iterator[CanvasFrame] = decoded
    previous, strokes = None, None
    try:       # the masker loads and starts on the first frames while the other models load
        sketcher = Sketcher(s, device, should_stop, chosen)
        if carried.locked_mask() is not None:
            sketcher.locked = torch.tensor(carried.locked_mask(), device=device)
        s.backends = {"mask": masker.name, "tracker": sketcher.tracker.name,
                      "guidance": sketcher.optimiser.guidance.name,
                      "saliency": sketcher.optimiser.saliency.name,
                      "rasterizer": sketcher.optimiser.rasterizer.name}
        header["settings"] = {**s.as_dict(), "device": device.type}
        folder.prepare()
        total = len(frame_range)
        progress.start(total, f"{os.path.basename(info.path)}: {total} frames of {info.frame_count}, "
                              f"{info.width}x{info.height} @ {info.fps:g} fps on {device.type}; "
                              f"mask {masker.name}, tracker {sketcher.tracker.name}, "
                              f"guidance {sketcher.optimiser.guidance.name}", folder.path)
        for note in notes:
            progress.log(note)
        if masker.name == "none" and s.mask == "auto" and not info.has_alpha:
            progress.warn("no mask: the whole frame is sketched, background included; run `dynasketch models "
                          "download isnet-general-use` for masks, or pick the subject with --subject X,Y,W,H")
        elif masker.name == "box":
            progress.warn("no masking model: the box around the subject is the mask, background included; "
                          "run `dynasketch models download isnet-general-use`")

        # One line weight for the whole clip, in source pixels: the stroke width on the whole
        # frame's canvas, whatever the subject window's zoom.
        weight = [s.width * s.canvas / 224.0 / framing.base.scale]
        ink = StrokeInk()                         # widths along strokes, footage colours (engine/ink)
        if folder.frames:
            ink.resume_from(folder.frames[-1]["strokes"])

        def finish(frames: list[CanvasFrame], strokes: torch.Tensor) -> None:
            for frame, points in zip(frames, strokes.detach().cpu().numpy()):
                flag = flags.get(frame.index)
                if flag is None and frame.masked and not bool(frame.mask.any()):
                    flag = "empty: no subject on this frame; the strokes follow the tracks"
                mask = frame.mask[0].cpu().numpy() > 0.5 if frame.masked else None
                cubics = frame.box.to_source(points)          # the run's curves (revisions carry by them)
                points, widths, colours = ink.draw(points, frame.rgb, mask, frame.box.inside(), weight[0])
                records = stroke_records(frame.box.to_source(points), weight[0], widths=widths, colours=colours)
                folder.add_frame(frame.index, carried.records(records, cubics), mask_note=flag)
                history[frame.index] = {"framing": frame.framing,
                                        "subject_box": getattr(masker, "followed", {}).get(frame.index)}
                computed[0] += 1
                if flag:
                    progress.log(f"frame {frame.index}: mask {flag}")

        def save(frame: CanvasFrame, strokes: torch.Tensor) -> None:
            """The resume state: the last frame's strokes in source pixels, and its framing."""
            folder.save({"strokes": frame.box.to_source(strokes.detach().cpu().double()),
                         "framing": frame.framing, "reseeds": sketcher.reseeds, "weight": weight[0],
                         "subject_box": getattr(masker, "followed", {}).get(frame.index),
                         "anchor": None if sketcher.anchor is None
                         else sketcher.anchor.cpu() / frame.box.scale,       # source px
                         "history": history, "stroke_set": carried.as_state()},
                        complete=len(folder.frames) == total)

        done = len(folder.frames)
        if state is not None and done:
            strokes = state["strokes"]                # source pixels
            if done < total:                          # the tracker restarts from the last frame
                previous = next(f for f in stream if f.index == folder.frames[-1]["index"])
                strokes = previous.box.to_canvas(strokes).float().to(device)
                if state.get("anchor") is not None:
                    sketcher.anchor = (state["anchor"] * previous.box.scale).float().to(device)
                sketcher.reseeds = state.get("reseeds", 0)
            progress.stage("optimise", done, total, f"resuming after {done} frames")

        if done < total:
            if previous is None or not s.temporal:
                first = next(stream)
                if s.temporal and job.first_strokes is not None:
                    strokes = first.box.to_canvas(torch.tensor(job.first_strokes, dtype=torch.float64))
                    strokes = strokes.float().to(device)
                    sketcher.anchor = sketcher.optimiser.lengths(strokes).detach()
                    finish([first], strokes[None])
                    previous = first
                    save(first, strokes)
                elif s.temporal:
                    progress.stage("initialise", done, total, f"first frame {first.index}: "
                                   f"{s.seeds} seeds x {s.keyframe_steps} steps")
                    strokes, saliency = sketcher.first(first)
                    folder.save_map("saliency.png", saliency)
                    finish([first], strokes[None])
                    previous = first
                    save(first, strokes)
                else:
                    stream = itertools.chain([first], stream)
            while len(folder.frames) < total:
                progress.stage("mask", len(folder.frames), total, "decoding and masking")
                frames = list(itertools.islice(stream, s.window))
                if not frames:
                    raise EngineError(f"{info.path}: the clip ended before frame "
                                      f"{frame_range.indices()[len(folder.frames)]}")
                sketcher.check_stop()
                note = ""
                if s.temporal:
                    progress.stage("track", len(folder.frames), total,
                                   f"tracking frames {frames[0].index}-{frames[-1].index}")
                    result = sketcher.window(previous, strokes, frames)
                    if sketcher.restarted:
                        note = f"; re-initialised {sketcher.restarted} lost strokes"
                    if sketcher.no_lines:
                        progress.log(f"frames {', '.join(map(str, sketcher.no_lines))}: no lines inside "
                                     "the subject; the strokes there follow the tracks")
                else:
                    progress.stage("optimise", len(folder.frames), total,
                                   f"frames {frames[0].index}-{frames[-1].index} from scratch")
                    result = sketcher.independent(frames)
                finish(frames, result)
                previous, strokes = frames[-1], result[-1]
                save(previous, strokes)
                progress.stage("optimise", len(folder.frames), total,
                               f"frame {frames[-1].index} ({len(folder.frames)}/{total}){note}")
    except BaseException as exc:  # a stop or an error: do not wait long for a frame being masked
        decoded.close(timeout=0.5)
        if isinstance(exc, torch.OutOfMemoryError):
            raise EngineError(out_of_memory(device)) from None
        raise
    decoded.close()                    # the prefetch thread stops before the preview decodes

    if previous is not None and strokes is not None:
        save(previous, strokes)
    else:                                  # nothing sketched in this run: the state stands
        folder.save({k: v for k, v in (state or {"strokes": torch.zeros(0)}).items()
                     if k not in ("fingerprint", "done")}, complete=True)
    preview = None
    if job.preview:
        progress.stage("export", total, total, "writing preview.mp4")
        preview = write_preview(os.path.join(folder.path, "preview.mp4"), source, frame_range,
                                folder.frames, info.fps, should_stop=should_stop)
        sketcher.check_stop()
    return {"sketch": folder.sketch_path, "frames": len(folder.frames), "preview": preview,
            "out": folder.path, "reseeds": sketcher.reseeds, "computed": computed[0],
            "mask_flags": sum("mask_note" in f for f in folder.frames)}
