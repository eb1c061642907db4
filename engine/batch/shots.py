"""The shot list: a CSV or JSON file of shots, each one `dynasketch sketch` run.

CSV: a header row ``clip,out,mask,frames`` and any option of ``dynasketch sketch`` as a
further column (``strokes``, ``preset``, ``subject``, ``device``, ``no-temporal`` ...); an
empty cell leaves the option at its default. JSON: a list of objects with the same keys.
Paths that are not absolute are read from the shot list's folder. Each shot is sketched into
``ROOT/<out>``; its options are read by the sketch command's own parser, so a shot is sketched
exactly as the command would sketch it.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
from dataclasses import dataclass, field

from ..errors import EngineError

# Columns that name a file: read from the list's folder when relative, and mapped by --path-map.
PATH_OPTIONS = ("mask", "ocio-config")
NOT_COLUMNS = ("out", "progress", "help")          # the batch sets these itself
TRUE = ("1", "true", "yes", "y", "x", "on")
FALSE = ("", "0", "false", "no", "n", "off")


class ShotParser(argparse.ArgumentParser):
    """The sketch command's parser, raising EngineError with argparse's message instead of exiting."""

    def error(self, message):
        raise EngineError(message)

    def exit(self, status=0, message=None):
        raise EngineError((message or "").strip() or "bad options")


def sketch_parser() -> argparse.ArgumentParser:
    from ..cli import build_parser

    return build_parser(ShotParser)


def sketch_options(parser) -> dict[str, argparse.Action]:
    """The sketch command's options by column name (``--no-temporal`` -> ``no-temporal``)."""
    sketch = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["sketch"]
    options = {}
    for action in sketch._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag[2:] not in NOT_COLUMNS:
                options[flag[2:]] = action
    return options


@dataclass
class Shot:
    """One row of the list: ``argv`` is its ``dynasketch sketch`` command line (without
    ``--out`` and ``--progress``, which the batch adds); ``error`` says why it cannot run."""

    out: str                          # its folder under ROOT, as the list names it
    clip: str
    argv: list[str] = field(default_factory=list)
    device: str = "auto"
    frames: str | None = None
    error: str | None = None
    row: int = 0                      # its line in the CSV, or its place in the JSON list (from 1)

    def spec(self) -> list[str]:
        """What makes the shot this shot (a finished shot with the same spec is skipped)."""
        return [self.clip, *self.argv]


def read_rows(path: str) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as exc:
        raise EngineError(f"shot list {path}: {exc.strerror}; check the path") from None
    if path.lower().endswith(".json") or text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise EngineError(f"shot list {path}: not valid JSON ({exc}); it must be a list of objects "
                              "with clip, out and sketch options") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise EngineError(f"shot list {path}: must be a JSON list of objects with clip, out and sketch options")
        return rows
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames:
        raise EngineError(f"shot list {path}: empty; its first line must be the header clip,out,mask,frames")
    rows = []
    for row in reader:
        if None in row:
            raise EngineError(f"shot list {path}, line {reader.line_num}: more cells than the header has columns")
        if any((v or "").strip() for v in row.values()):
            rows.append({k.strip(): (v or "").strip() for k, v in row.items()})
    return rows


def read_shots(path: str) -> list[Shot]:
    """The shots of the list at ``path``. A list that cannot be read, with an unknown column
    or twice the same ``out``, is refused whole (EngineError); a row whose values are bad is
    a shot with an ``error``, which fails alone."""
    rows = read_rows(path)
    if not rows:
        raise EngineError(f"shot list {path}: no shots in it")
    base = os.path.dirname(os.path.abspath(path))
    parser = sketch_parser()
    options = sketch_options(parser)
    columns = {k for row in rows for k in row}
    unknown = sorted(c for c in columns if c not in ("clip", "out") and c.replace("_", "-") not in options)
    if unknown:
        raise EngineError(f"shot list {path}: unknown column {', '.join(map(repr, unknown))}; the columns are clip, "
                          f"out and the options of `dynasketch sketch` ({', '.join(sorted(options))})")
    shots, seen = [], {}
    for number, row in enumerate(rows, start=1):
        shot = make_shot(row, base, parser, options)
        shot.row = number
        if shot.out in seen:
            raise EngineError(f"shot list {path}: shots {seen[shot.out]} and {number} both write to out "
                              f"{shot.out!r}; give each shot its own out")
        seen[shot.out] = number
        shots.append(shot)
    return shots


def make_shot(row: dict, base: str, parser, options: dict) -> Shot:
    out = str(row.get("out") or "").strip()
    clip = str(row.get("clip") or "").strip()
    shot = Shot(out=out or f"shot-{id(row)}", clip=clip)
    if not out:
        shot.error = "no out: give each shot the folder it is sketched into (relative to --out)"
        return shot
    if os.path.isabs(out) or ".." in out.replace("\\", "/").split("/"):
        shot.error = f"out {out!r}: must be a folder inside --out (relative, without ..)"
        return shot
    if not clip:
        shot.error = "no clip: give the video, image folder or pattern to sketch"
        return shot
    shot.clip = absolute(clip, base)
    argv: list[str] = []
    for key, value in row.items():
        if key in ("clip", "out") or value is None:
            continue
        name = key.replace("_", "-")
        action = options[name]
        values = value if isinstance(value, list) else [value]
        if isinstance(action, argparse._StoreTrueAction):
            text = str(value).strip().lower() if not isinstance(value, bool) else ("true" if value else "")
            if text in TRUE:
                argv.append(f"--{name}")
            elif text not in FALSE:
                shot.error = f"{name} {value!r}: write true or false"
                return shot
            continue
        if isinstance(action, argparse._AppendAction) and isinstance(value, str):
            values = [v for v in value.split(";")]               # several boxes in one cell
        for item in values:
            text = str(item).strip()
            if text == "":
                continue
            if name in PATH_OPTIONS and (name != "mask" or looks_like_path(text)):
                text = absolute(text, base)
            argv += [f"--{name}", text]
    try:
        args = parser.parse_args(["sketch", shot.clip, "--out", "-", *argv])
    except EngineError as exc:
        shot.error = str(exc)
        return shot
    shot.argv, shot.device, shot.frames = argv, args.device, args.frames
    return shot


def looks_like_path(mask: str) -> bool:
    """A ``--mask`` value that is a file rather than a masker's name."""
    return "/" in mask or "\\" in mask or "." in mask


def absolute(path: str, base: str) -> str:
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def parse_path_maps(items: list[str]) -> list[tuple[str, str]]:
    maps = []
    for item in items:
        source, sep, target = item.partition("=")
        if not sep or not source or not target:
            raise EngineError(f"--path-map {item!r}: write FROM=TO, e.g. /mnt/shows=/Volumes/shows")
        maps.append((source.rstrip("/\\") or source, target.rstrip("/\\") or target))
    return maps


def localise(path: str, maps: list[tuple[str, str]]) -> str:
    """``path`` as this node reads it: as written where it is there, else under the first
    ``--path-map`` FROM=TO whose FROM starts it and whose TO is there (the shared folder
    mounted elsewhere on this node)."""
    if not maps or os.path.exists(path):
        return path
    for source, target in maps:
        if path == source or path.startswith(source + "/") or path.startswith(source + "\\"):
            mapped = target + path[len(source):].replace("\\", "/")
            if os.path.exists(mapped) or os.path.isdir(os.path.dirname(mapped)) or os.path.isdir(target):
                return mapped
    return path


def localise_argv(clip: str, argv: list[str], maps) -> tuple[str, list[str]]:
    """The shot's clip and options with their paths as this node reads them."""
    out = list(argv)
    for i in range(len(out) - 1):
        if out[i][2:] in PATH_OPTIONS and (out[i] != "--mask" or looks_like_path(out[i + 1])):
            out[i + 1] = localise(out[i + 1], maps)
    return localise(clip, maps), out
