"""The shots on Ray: one task per shot (one per chunk with ``--chunk``), retried when its
worker dies, with one GPU each where the shot runs on CUDA (docs/BATCH.md).

The tasks report their progress to a ``Board`` actor that the driver reads (without waiting
for an answer: a task blocked in ``ray.get`` would lend its CPU to another task); what each
shot did goes into ``ROOT/batch.json`` (record.py).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time

from ..errors import EngineError
from ..progress import Progress
from . import chunks
from .record import BatchRecord, now
from .report import make_report
from .shots import localise, localise_argv, parse_path_maps, read_shots, sketch_parser

ENGINE_HOME = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def import_ray(address: str | None = None):
    """Ray, once set to join ``address``: with the cluster's token where this machine has one
    (as `ray start` does; read when Ray is imported)."""
    if address and "RAY_AUTH_MODE" not in os.environ and (
            os.environ.get("RAY_AUTH_TOKEN") or os.path.exists(os.path.expanduser("~/.ray/auth_token"))):
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        import ray
    except ImportError:
        raise EngineError("dynasketch batch needs Ray: pip install 'dynasketch[farm]' (scripts/setup.sh "
                          "installs it)") from None
    return ray


# -- the tasks (run on the workers) ---------------------------------------------------------

class Board:
    """A Ray actor holding the tasks' reports until the driver takes them."""

    def __init__(self):
        self.items: list[dict] = []

    def put(self, item: dict) -> None:
        self.items.append(item)

    def take(self) -> list[dict]:
        items, self.items = self.items, []
        return items


def post(board, item: dict) -> None:
    """Send a report to the driver, not waiting for it to arrive."""
    try:
        board.put.remote(item)
    except Exception:                    # the driver is gone: the shot goes on all the same
        pass


class BoardProgress(Progress):
    """A sketch run's progress (engine.progress.Progress) sent to the driver's queue."""

    def __init__(self, board, shot: str, part: str):
        super().__init__()
        self.board, self.shot, self.part = board, shot, part
        self.error = None

    def send(self, kind: str, **values) -> None:
        post(self.board, {"kind": kind, "shot": self.shot, "part": self.part, **values})

    def start(self, total, message, out):
        super().start(total, message, out)
        self.send("progress", stage="decode", done=0, total=total, message=message)

    def stage(self, stage, done, total, message=""):
        super().stage(stage, done, total, message)
        self.send("progress", stage=stage, done=done, total=total, message=message)

    def warn(self, message):
        self.log(f"warning: {message}")
        self.send("warning", message=message)

    def failed(self, message, log):
        self.error = message

    def interrupted(self, message):
        self.error = message


def where_am_i() -> dict:
    import ray

    gpus = ray.get_gpu_ids()
    return {"machine": socket.gethostname(), "pid": os.getpid(),
            "gpus": os.environ.get("CUDA_VISIBLE_DEVICES") if gpus else None}


def sketch_part(part: dict, board) -> dict:
    """One shot, or one piece of a chunked shot, sketched as ``dynasketch sketch`` sketches it.
    ``part``: shot, part, clip, argv, out, maps, and optionally frames, no_preview,
    first_strokes. Returns its exit code, error, device, machine, GPUs and frames."""
    from ..devices import prepare_environment

    prepare_environment()
    import torch

    from ..cli import sketch_with

    if os.environ.get("OMP_NUM_THREADS", "").isdigit():    # Ray's, for this task's CPUs (a reused
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))  # worker keeps its first)

    here = where_am_i()
    post(board, {"kind": "start", "shot": part["shot"], "part": part["part"], **here})
    started = time.time()
    progress = BoardProgress(board, part["shot"], part["part"])
    out = localise(part["out"], part["maps"])
    try:
        clip, argv = localise_argv(part["clip"], part["argv"], part["maps"])
        args = sketch_parser().parse_args(["sketch", clip, "--out", out, *argv])
        if part.get("frames"):
            args.frames = part["frames"]
        if part.get("no_preview"):
            args.no_preview = True
    except EngineError as exc:
        return {**here, "code": EngineError.exit_code, "error": str(exc), "seconds": 0.0, "out": out}
    code = sketch_with(args, progress, lambda: False, part.get("first_strokes"))
    result = {**here, "code": code, "error": progress.error, "seconds": time.time() - started, "out": out}
    try:
        with open(os.path.join(out, "sketch.json"), encoding="utf-8") as f:
            sketch = json.load(f)
        result["device"] = sketch.get("settings", {}).get("device")
        result["frames"] = len(sketch.get("frames", []))
    except (OSError, ValueError):
        pass
    return result


def sketch_chunked(part: dict, board, chunk: int, overlap: int, options: dict, retries: int) -> dict:
    """A long shot in chunks (chunks.py): the keyframes' task, then one task per chunk, in
    parallel, then the stitch here. This task holds no CPU or GPU of its own."""
    import ray

    from ..video import open_video, parse_frame_range

    here = where_am_i()
    started = time.time()
    out = localise(part["out"], part["maps"])
    try:
        clip, argv = localise_argv(part["clip"], part["argv"], part["maps"])
        args = sketch_parser().parse_args(["sketch", clip, "--out", out, *argv])
        source = open_video(args.input, args.fps, args.start_number)
        frame_range = parse_frame_range(args.frames, source.info.frame_count)
    except EngineError as exc:
        return {**here, "code": EngineError.exit_code, "error": str(exc), "seconds": 0.0, "out": out}
    remote = remote_functions(ray)
    task = remote["gpu" if options.get("num_gpus") else "cpu"].options(max_retries=retries, **options)
    if len(frame_range) <= chunk:                     # a short shot: in one piece, as without --chunk
        return ray.get(task.remote(part, board))
    try:
        spec_path = os.path.join(out, chunks.FOLDER, "spec.json")
        spec = {"spec": [part["clip"], *part["argv"]], "chunk": chunk, "overlap": overlap}
        if os.path.exists(os.path.join(out, "sketch.json")) and not args.overwrite:
            try:
                with open(spec_path, encoding="utf-8") as f:
                    same = json.load(f) == spec
            except (OSError, ValueError):
                same = False
            if not same:
                raise EngineError(f"--out {out}: holds a sketch made from other settings or input; choose "
                                  "another out, or set overwrite for this shot")
    except EngineError as exc:
        return {**here, "code": EngineError.exit_code, "error": str(exc), "seconds": 0.0, "out": out}
    os.makedirs(os.path.dirname(spec_path), exist_ok=True)
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    indices = list(frame_range.indices())
    step = frame_range.step
    base = {**part, "no_preview": True}
    folder = os.path.join(part["out"], chunks.FOLDER)

    keys = ray.get(task.remote({**base, "part": "keys", "out": os.path.join(folder, "keys"),
                                "frames": chunks.keys_text(indices, chunk, step)}, board))
    if keys["code"] != 0:
        return {**keys, "error": f"keyframes: {keys['error']}", "out": out}
    key_sketch = chunks.load(os.path.join(localise(folder, part["maps"]), "keys", "sketch.json"))
    pieces = chunks.plan(len(indices), chunk, overlap)
    refs = [task.remote({**base, "part": p.name, "out": os.path.join(folder, p.name),
                         "frames": chunks.frames_text(indices, p.first, p.last, step),
                         "first_strokes": chunks.strokes_at(key_sketch, indices[p.first])}, board)
            for p in pieces]
    results = ray.get(refs)
    for piece, result in zip(pieces, results):
        if result["code"] != 0:
            return {**result, "error": f"{piece.name} (frames {chunks.frames_text(indices, piece.first, piece.last, step)}): "
                                       f"{result['error']}", "out": out}
    sketches = [chunks.load(os.path.join(localise(folder, part["maps"]), p.name, "sketch.json")) for p in pieces]
    frames = chunks.stitch(pieces, sketches, indices, overlap)
    header = {k: v for k, v in key_sketch.items() if k not in ("frames", "complete")}
    header["source"] = {**header["source"], "frames": frame_range.as_list()}
    header["chunks"] = {"size": chunk, "overlap": overlap, "count": len(pieces)}
    chunks.write_stitched(out, header, frames)
    if not args.no_preview:
        from ..preview import write_preview

        write_preview(os.path.join(out, "preview.mp4"), source, frame_range, frames, source.info.fps)
    machines = sorted({r["machine"] for r in [keys, *results]})
    gpus = [r["gpus"] for r in [keys, *results] if r.get("gpus")]
    return {**here, "code": 0, "error": None, "seconds": time.time() - started, "out": out,
            "device": keys.get("device"), "frames": len(frames), "machine": ", ".join(machines),
            "gpus": ", ".join(gpus) or None, "chunks": len(pieces)}


_REMOTE: dict = {}


def remote_functions(ray) -> dict:
    """The tasks as Ray remote functions. A GPU task's worker runs one task then exits (Ray's
    default for num_gpus), so each shot's CUDA starts on the GPU Ray gave it."""
    if not _REMOTE:
        _REMOTE["cpu"] = ray.remote(sketch_part)
        _REMOTE["gpu"] = ray.remote(num_gpus=1)(sketch_part)
        _REMOTE["chunked"] = ray.remote(num_cpus=0)(sketch_chunked)
    return _REMOTE


# -- the driver -------------------------------------------------------------------------------

def short_temp_folder() -> None:
    """Ray's sockets live in its temp folder, and a socket's path is at most 107 bytes: under a
    long $TMPDIR (a test's, a sandbox's) a local Ray goes under /tmp instead."""
    import tempfile

    if os.name == "posix" and "RAY_TMPDIR" not in os.environ and len(tempfile.gettempdir()) > 24 \
            and os.path.isdir("/tmp"):
        os.environ["RAY_TMPDIR"] = "/tmp"


def connect(ray, address: str | None) -> str:
    """Join the Ray cluster at ``address`` (else ``$RAY_ADDRESS``), or start a local one;
    a sentence that says which."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    try:
        if address:
            ray.init(address=address, **quiet)
        else:                   # the workers import this engine, wherever the driver found it
            short_temp_folder()
            path = os.pathsep.join(p for p in (ENGINE_HOME, os.environ.get("PYTHONPATH")) if p)
            ray.init(address="local", include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}}, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"cannot join the Ray cluster at {address}: {first}; start it with `ray start --head`, "
                          "and with token authentication give this machine the cluster's token (RAY_AUTH_TOKEN or "
                          "~/.ray/auth_token; docs/BATCH.md), or leave out --address for a local Ray") from None
    resources = ray.cluster_resources()
    where = f"the Ray cluster at {address}" if address else "a local Ray"
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    return (f"{where}: {nodes} node{'s' if nodes != 1 else ''}, {resources.get('CPU', 0):g} CPUs, "
            f"{resources.get('GPU', 0):g} GPUs")


def check_args(args) -> None:
    if args.chunk is not None and args.chunk < 2:
        raise EngineError(f"--chunk {args.chunk}: a chunk needs at least 2 frames")
    if args.overlap < 0:
        raise EngineError(f"--overlap {args.overlap}: 0 or more frames")
    if args.gpus_per_shot <= 0:
        raise EngineError(f"--gpus-per-shot {args.gpus_per_shot:g}: above 0 (a fraction shares a GPU)")
    if args.cpus_per_shot < 0:
        raise EngineError(f"--cpus-per-shot {args.cpus_per_shot:g}: 0 or more")
    if args.retries < 0:
        raise EngineError(f"--retries {args.retries}: 0 or more")


def run_batch(args, kind: str) -> int:
    """``dynasketch batch``: 0 when every shot is done, 2 when any failed (or the list is
    bad), 130 when stopped."""
    check_args(args)
    maps = parse_path_maps(args.path_map)
    shots = read_shots(args.shots)
    root = os.path.abspath(args.out)
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"--out {root}: cannot create the folder ({exc.strerror})") from None
    record = BatchRecord(root, args.shots)
    ray = import_ray(args.address or os.environ.get("RAY_ADDRESS"))
    report = make_report(kind)
    if kind == "json":         # stdout is the progress lines': what Ray prints there goes to stderr
        sys.stdout.flush()
        report.stdout = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)

    where = connect(ray, args.address)

    # SIGTERM (the add-on's Cancel) asks the wait loop to stop. Set after Ray's start, whose own
    # handler would exit at once; raised from the handler, the interrupt could land inside Ray's
    # code and come out as another error (exit 1, not 130).
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    try:
        return _run(ray, args, shots, maps, root, record, report, where, stopping)
    finally:
        report.close()
        ray.shutdown()


def _run(ray, args, shots, maps, root, record, report, where, stopping: threading.Event) -> int:
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    board = ray.remote(num_cpus=0)(Board).remote()
    remote = remote_functions(ray)
    pending: dict = {}                   # ObjectRef -> shot
    extra = [] if args.chunk is None else [f"--chunk={args.chunk}", f"--overlap={args.overlap}"]
    report.begin(len(shots), f"{len(shots)} shot{'s' if len(shots) != 1 else ''} on {where}", root, record.path)
    for shot in shots:
        spec = shot.spec() + extra
        if shot.error:
            entry = record.add(shot, spec, state="failed", error=shot.error, finished=now())
            report.shot(shot.out, "failed", entry)
            continue
        old = record.finished_before(shot, spec)
        if old is not None:
            entry = record.add(shot, spec, **{k: v for k, v in old.items() if k not in ("out", "spec", "skipped")},
                               skipped=True)
            report.progress(shot.out, "shot", "export", old.get("frames") or 0, old.get("frames") or 0, "done before")
            report.shot(shot.out, "done", entry)
            continue
        gpu = shot.device in ("auto", "cuda") and has_gpu
        if shot.device == "cuda" and not has_gpu:
            entry = record.add(shot, spec, state="failed", finished=now(),
                               error="device cuda: the Ray cluster has no GPU; add GPU workers (docs/BATCH.md) "
                                     "or set device auto or cpu")
            report.shot(shot.out, "failed", entry)
            continue
        options = {"num_cpus": args.cpus_per_shot, **({"num_gpus": args.gpus_per_shot} if gpu else {})}
        part = {"shot": shot.out, "part": "shot", "clip": shot.clip, "argv": shot.argv,
                "out": os.path.join(root, shot.out), "maps": maps}
        if args.chunk is not None:
            ref = remote["chunked"].options(max_retries=args.retries).remote(
                part, board, args.chunk, args.overlap, options, args.retries)
        else:
            ref = remote["gpu" if gpu else "cpu"].options(max_retries=args.retries, **options).remote(part, board)
        pending[ref] = shot
        record.add(shot, spec, state="queued", skipped=False)
    record.write()

    try:
        while pending:
            if stopping.is_set():
                raise KeyboardInterrupt
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            drain(board, record, report)
            for ref in ready:
                shot = pending.pop(ref)
                finish(ray, ref, shot, record, report)
        drain(board, record, report)
    except KeyboardInterrupt:
        for ref, shot in pending.items():
            try:
                ray.cancel(ref, force=True, recursive=True)
            except Exception:            # it ended just now: recorded as stopped all the same
                pass
            record.update(shot.out, state="interrupted", finished=now(),
                          error="stopped; run the same batch again to resume")
        report.end(f"stopped: {len(pending)} shots not finished; run the same batch again to resume",
                   {"record": record.path, **record.counts()}, "interrupted")
        return 130
    counts = record.counts()
    message = (f"{counts['done']} of {len(shots)} shots done" + (f", {counts['failed']} failed (batch.json says why)"
                                                                  if counts["failed"] else ""))
    report.end(message, {"record": record.path, "failed": counts["failed"], "shots_done_count": counts["done"]})
    return 0 if counts["failed"] == 0 else EngineError.exit_code


def drain(board, record: BatchRecord, report) -> None:
    """Pass the tasks' reports on: progress to the bars or lines, starts to batch.json."""
    import ray

    try:
        items = ray.get(board.take.remote(), timeout=30)
    except Exception:            # the board's node went away: the shots' ends are still recorded
        return
    for item in items:
        shot = item["shot"]
        if item["kind"] == "start":
            entry = record.shots[shot]
            if item["part"] in ("shot", "keys"):          # a retried shot starts again
                attempts = entry["attempts"] + 1
                record.update(shot, state="running", attempts=attempts, started=entry["started"] or now(),
                              machine=item["machine"], pid=item["pid"], gpus=item["gpus"])
                report.shot(shot, "running", record.shots[shot])
        elif item["kind"] == "progress":
            report.progress(shot, item["part"], item["stage"], item["done"], item["total"], item["message"])
        elif item["kind"] == "warning":
            report.warn(shot, item["message"])


def finish(ray, ref, shot, record: BatchRecord, report) -> None:
    """Record a shot's end: its result, or why its task failed (its worker died too often)."""
    entry = record.shots[shot.out]
    try:
        result = ray.get(ref)
    except Exception as exc:             # the worker died more times than --retries, or Ray failed
        why = type(exc).__name__
        if isinstance(exc, ray.exceptions.WorkerCrashedError) or "died" in str(exc):
            why = f"its worker died {entry['attempts'] or 1} times (out of memory, or killed)"
        error = f"{why}; run the same batch again to resume it"
        record.update(shot.out, state="failed", error=error, finished=now())
        report.shot(shot.out, "failed", record.shots[shot.out])
        return
    started = entry["started"]
    values = {k: result.get(k) for k in ("device", "machine", "gpus", "frames", "pid") if result.get(k) is not None}
    values.update(finished=now(), seconds=round(result.get("seconds") or 0.0, 2))
    if "chunks" in result:
        values["chunks"] = result["chunks"]
    if result["code"] == 0:
        record.update(shot.out, state="done", error=None, started=started, **values)
        report.shot(shot.out, "done", record.shots[shot.out])
    else:
        record.update(shot.out, state="failed", error=result.get("error") or f"exit code {result['code']}",
                      **values)
        report.shot(shot.out, "failed", record.shots[shot.out])
