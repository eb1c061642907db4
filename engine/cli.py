"""The ``dynasketch`` command (also ``python -m engine``); see docs/CONTRACT.md."""
from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import traceback

from .devices import CHOICES, prepare_environment
from .errors import EngineError, Interrupted


def build_parser(parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser_class``: another class for the parser and its commands (the batch reads each
    shot's options with one that raises EngineError rather than exit: engine/batch/shots.py)."""
    parser = parser_class(prog="dynasketch", description="Turn a video into a temporally coherent stroke sketch.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=parser_class)

    sk = sub.add_parser("sketch", help="sketch a video, every frame of the range")
    sk.add_argument("input", help="video file, image folder, or pattern like frame_%%04d.png")
    sk.add_argument("--out", required=True, help="output folder (created; resumed if it holds this job)")
    sk.add_argument("--strokes", type=int, default=16, help="strokes per frame (default 16)")
    sk.add_argument("--width", type=float, default=1.5, help="stroke width on the 224 px canvas (default 1.5)")
    sk.add_argument("--frames", default=None, metavar="A:B[:S]",
                    help="source frames START:END[:STEP], END exclusive (default: all)")
    sk.add_argument("--seeds", type=int, default=3, help="tries for the first frame (default 3)")
    sk.add_argument("--mask", default="auto",
                    help="auto | none | alpha | inspyrenet | inspyrenet-fast | isnet | isnet-small | PATH of a mask video or "
                         "image sequence (auto: the clip's alpha channel, else InSPyReNet, else ISNet, when their "
                         "weights are here, else none)")
    sk.add_argument("--subject", action="append", default=[], metavar="X,Y,W,H[@FRAME]",
                    help="a box around the subject on one source frame (default: the first sketched), in "
                         "source pixels: the masking network follows what is in it; repeat on later frames "
                         "to correct the follow")
    sk.add_argument("--mask-start-number", type=int, default=None, metavar="N",
                    help="with a mask image pattern: its image for the clip's first frame, read up to the "
                         "first missing number as --start-number reads the clip")
    sk.add_argument("--device", default="auto", choices=list(CHOICES),
                    help="auto: CUDA, else an Apple GPU (mps), else the CPU")
    sk.add_argument("--preset", default="default", choices=["fast", "default", "paper"])
    sk.add_argument("--no-temporal", action="store_true", help="sketch every frame independently")
    sk.add_argument("--framing", default="subject", choices=["subject", "frame"],
                    help="subject: the canvas follows the subject's mask (default); frame: the whole frame")
    sk.add_argument("--guidance", default="auto", help="auto | line | clip: the guidance loss (auto: CLIP on a CUDA GPU when its weights are here, else line)")
    sk.add_argument("--saliency", default="auto", help="auto | edges | clip: where strokes start")
    sk.add_argument("--tracker", default="auto", help="auto | lucas-kanade | cotracker")
    sk.add_argument("--fps", type=float, default=None, help="frame rate of an image sequence (default 24)")
    sk.add_argument("--start-number", type=int, default=None, metavar="N",
                    help="with an image pattern: start at image N and stop at the first missing number, "
                         "as Blender reads a sequence (default: every image the pattern matches)")
    sk.add_argument("--colorspace", default=None, metavar="NAME",
                    help="the footage's colour space as Blender reads it (its Color Space, e.g. 'Filmic Log' "
                         "or 'ACEScg'): frames are sketched as Blender shows them in the Standard view")
    sk.add_argument("--ocio-config", default=None, metavar="PATH",
                    help="the OpenColorIO config --colorspace is from (default: $OCIO); Blender's is "
                         "datafiles/colormanagement/config.ocio in its folder")
    sk.add_argument("--seed", type=int, default=0, help="random seed")
    sk.add_argument("--overwrite", action="store_true", help="replace a different sketch in --out")
    sk.add_argument("--revise", default=None, metavar="EDITS.json",
                    help="one frame's drawing as the artist edited it, into the --out of an earlier run of "
                         "this clip and settings: that frame is kept as given and the frames after it are "
                         "sketched again from it (docs/CONTRACT.md, Revisions)")
    sk.add_argument("--no-preview", action="store_true", help="skip preview.mp4")
    sk.add_argument("--progress", default="auto", choices=["auto", "bar", "json", "none"])

    doc = sub.add_parser("doctor", help="which backends and devices are usable here, and why not")
    doc.add_argument("--json", action="store_true")

    mod = sub.add_parser("models", help="list, download, verify or locate model weights")
    mod.add_argument("action", choices=["list", "download", "verify", "path"])
    mod.add_argument("names", nargs="*", help="model names (see `models list`), or all")
    mod.add_argument("--progress", default="auto", choices=["auto", "bar", "json", "none"],
                     help="downloads: a bar (auto: when stderr is a terminal), JSON lines, or nothing")

    bat = sub.add_parser("batch", help="sketch a shot list on Ray (a local one, or a cluster): docs/BATCH.md")
    bat.add_argument("shots", help="CSV (header clip,out,mask,frames and any sketch option) or JSON list of shots")
    bat.add_argument("--out", required=True, help="root folder: each shot is sketched into OUT/<its out>")
    bat.add_argument("--address", default=None, metavar="HOST:PORT",
                     help="a Ray cluster's head (default: $RAY_ADDRESS, else a local Ray started here)")
    bat.add_argument("--gpus-per-shot", type=float, default=1, metavar="N",
                     help="GPUs for each shot that runs on CUDA (default 1)")
    bat.add_argument("--cpus-per-shot", type=float, default=1, metavar="N",
                     help="CPU cores for each shot (default 1)")
    bat.add_argument("--chunk", type=int, default=None, metavar="N",
                     help="split shots longer than N frames into chunks sketched in parallel, then stitched")
    bat.add_argument("--overlap", type=int, default=8, metavar="N",
                     help="with --chunk: frames each chunk runs on into the next, blended at the seam (default 8)")
    bat.add_argument("--path-map", action="append", default=[], metavar="FROM=TO",
                     help="on the workers, read paths of the shot list that start with FROM under TO (repeatable)")
    bat.add_argument("--retries", type=int, default=3, help="times a shot whose worker died is run again (default 3)")
    bat.add_argument("--progress", default="auto", choices=["auto", "bar", "json", "none"])

    smp = sub.add_parser("sample", help="write the procedural sample clip (and its mask)")
    smp.add_argument("path", help="video to write, e.g. sample.mp4")
    smp.add_argument("--mask", default=None, help="also write its mask video here")
    smp.add_argument("--frames", type=int, default=36)
    return parser


# A disk (or quota, or file size limit) that is full: the user can act on it.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class StopFlag:
    """Set by SIGINT/SIGTERM; the job checks it between optimisation steps."""

    def __init__(self):
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped

    def install(self) -> None:
        def handler(signum, frame):
            if self.stopped:                   # a second signal: leave at once
                os._exit(130)
            self.stopped = True

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def cmd_sketch(args) -> int:
    from .progress import make_progress

    kind = args.progress if args.progress != "auto" else ("bar" if sys.stderr.isatty() else "none")
    stop = StopFlag()
    stop.install()
    return sketch_with(args, make_progress(kind), stop)


def sketch_with(args, progress, stop, first_strokes=None) -> int:
    """The sketch of ``args`` reported to ``progress`` (which is closed after), stopped when
    ``stop()``; the exit code. The batch's workers run each shot with this (engine/batch);
    ``first_strokes``: see ``pipeline.Job``."""
    from .pipeline import Job, run_sketch
    from .progress import frames_text
    from .settings import Settings

    log = os.path.join(os.path.abspath(args.out), "dynasketch.log")
    try:
        settings = Settings.from_preset(args.preset, strokes=args.strokes, width=args.width,
                                        seeds=args.seeds, mask=args.mask, mask_start_number=args.mask_start_number,
                                        subject=args.subject,
                                        device=args.device,
                                        temporal=not args.no_temporal, guidance=args.guidance, saliency=args.saliency,
                                        tracker=args.tracker, seed=args.seed, framing=args.framing)
        progress.log_path = log
        job = Job(args.input, args.out, settings, args.frames, args.fps, args.overwrite,
                  preview=not args.no_preview, start_number=args.start_number,
                  colorspace=args.colorspace, ocio_config=args.ocio_config, revise=args.revise,
                  first_strokes=first_strokes)
        summary = run_sketch(job, progress, lambda: stop() or progress.reader_gone)
    except EngineError as exc:
        return user_error(progress, log, str(exc))
    except (Interrupted, KeyboardInterrupt):
        stage, done, total = progress.current
        why = ": the program reading the progress lines exited" if progress.reader_gone else ""
        message = f"stopped after {done} of {total} frames{why}; run the same command again to resume"
        progress.interrupted(message)
        progress.log(message)
        return Interrupted.exit_code
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            return internal_error(progress, log, exc)
        return user_error(progress, log, f"cannot write {exc.filename or args.out}: {exc.strerror}; free some "
                                         "space, then run the same command again to resume")
    except Exception as exc:  # a bug: one line for the user, the traceback in the log
        return internal_error(progress, log, exc)
    finally:
        progress.close()
    progress.log(f"done: {frames_text(summary['frames'])}")
    progress.finished(summary)
    return 0


def user_error(progress, log: str, message: str) -> int:
    """What the user can act on: one line (and the log's path when there is a log). A folder
    with no log of a job (the user's own, or new) is not written to."""
    had_log = os.path.exists(log)
    progress.failed(message, log if had_log else None)
    if had_log:
        progress.log(f"error: {message}")
    return EngineError.exit_code


def internal_error(progress, log: str, exc: Exception) -> int:
    """A bug: one line for the user, the traceback in the log."""
    progress.log_path = log
    written = progress.log("internal error\n" + traceback.format_exc())
    where = f"details in {log}" if written else "run again with --progress bar to see more"
    progress.failed(f"internal error ({type(exc).__name__}: {exc}); {where}", log if written else None)
    return 1


def cmd_batch(args) -> int:
    from .batch import run_batch

    kind = args.progress if args.progress != "auto" else ("bar" if sys.stderr.isatty() else "none")
    try:
        return run_batch(args, kind)
    except EngineError:
        raise
    except KeyboardInterrupt:
        print("dynasketch: batch stopped; run the same batch again to resume", file=sys.stderr)
        return Interrupted.exit_code
    except Exception as exc:  # a bug: one line, the traceback in ROOT/batch.log
        log = os.path.join(os.path.abspath(args.out), "batch.log")
        try:
            with open(log, "a", encoding="utf-8") as f:
                f.write(traceback.format_exc())
        except OSError:
            log = None
        print(f"dynasketch: error: internal error ({type(exc).__name__}: {exc})"
              + (f"; details in {log}" if log else ""), file=sys.stderr)
        return 1


def cmd_doctor(args) -> int:
    from .doctor import diagnose

    report = diagnose()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for section, items in report.items():
            print(f"{section}:")
            for name, (ok, why) in items.items():
                print(f"  [{'ok' if ok else '--'}] {name}: {why}")
    return 0


def cmd_models(args) -> int:
    from .models import command
    from .progress import tell

    kind = args.progress if args.progress != "auto" else ("bar" if sys.stderr.isatty() else "none")
    if args.action != "download":
        return command(args.action, args.names, kind)

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    try:
        return command(args.action, args.names, kind)
    except KeyboardInterrupt:            # the partial file stays: the same command resumes it
        tell("dynasketch: download stopped; run the same command again to resume")
        return Interrupted.exit_code


def cmd_sample(args) -> int:
    from .sample import write_sample

    for path in (args.path, args.mask):
        if path and os.path.dirname(os.path.abspath(path)):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_sample(args.path, args.mask, frames=args.frames)
    print(f"wrote {args.path}" + (f" and {args.mask}" if args.mask else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"sketch": cmd_sketch, "doctor": cmd_doctor, "models": cmd_models,
                "sample": cmd_sample, "batch": cmd_batch}[args.command](args)
    except EngineError as exc:
        print(f"dynasketch: error: {exc}", file=sys.stderr)
        return exc.exit_code


def run() -> None:
    """The ``dynasketch`` command."""
    prepare_environment()                 # before torch is imported
    end(main())


def end(code: int) -> None:
    """Exit with ``code``. After a stop or an error, a frame may still be in the masking
    thread (``prefetch.Prefetcher``; seconds on a CPU): the run has reported and saved
    everything, so the process ends now rather than wait for that frame. A normal exit there
    would abort in the middle of its torch work."""
    import threading

    prefetch = sys.modules.get(f"{__package__}.prefetch")          # loaded by a sketch run
    if prefetch and any(t.name == prefetch.THREAD_NAME and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
