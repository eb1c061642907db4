"""The model manager: the weight files the neural backends use, in one cache folder.

``dynasketch models list|download|verify|path``. Nothing is downloaded unless asked.
Downloads show progress, resume a partial ``.part`` file with an HTTP Range request, check
the size and checksum, and only then move the file into place atomically, so a bad download
never replaces a good file.

The folder is ``$DYNASKETCH_HOME``, else ``$XDG_CACHE_HOME/dynasketch`` (default
``~/.cache/dynasketch``). ``$DYNASKETCH_MODEL_MIRROR``, a base URL holding the files by their
file names (a studio's own server), is fetched from instead of the public URLs; the files are
checked against the same table.
"""
from __future__ import annotations

import dataclasses
import getpass
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable

from .errors import EngineError


@dataclass(frozen=True)
class ModelFile:
    name: str
    filename: str
    url: str
    used_by: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    licence: str = ""
    # A file that a registry package ships rather than a URL: the package (``name@version``,
    # fetched with ``npm pack``) and the resource in its ``dist/resources.json`` whose chunks,
    # concatenated, are the file.
    npm: str | None = None
    npm_resource: str | None = None

    @property
    def checksum(self) -> str:
        if self.sha256:
            return f"sha256:{self.sha256}"
        if self.md5:
            return f"md5:{self.md5}"
        return "none published"


_CLIP = "https://openaipublic.azureedge.net/clip/models"
_TB = "https://github.com/plemeri/transparent-background/releases/download/1.2.12"
_COTRACKER = "https://huggingface.co/facebook/cotracker3/resolve/main"
_REMBG = "https://github.com/danielgatis/rembg/releases/download/v0.0.0"
_IMGLY = "@imgly/background-removal-data@1.4.5"
_IMGLY_LICENCE = "AGPL-3.0 (IMG.LY's package; the network is DIS's, Qin et al. 2022)"

# OpenAI's CLIP URLs carry the file's SHA-256 in their path; transparent-background's
# config.yaml gives the md5 of the InSPyReNet checkpoints. CoTracker's files have none here:
# Hugging Face, which serves them, names each file's SHA-256 in its X-Linked-Etag header, and a
# download checks the file against that (``download``) and keeps it beside the file
# (``<file>.sha256``), so that the file is checked against it from then on.
MODELS = {m.name: m for m in [
    ModelFile("clip-rn101", "RN101.pt",
              f"{_CLIP}/8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt",
              "CLIP guidance (CLIPasso's loss)",
              sha256="8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599"),
    ModelFile("clip-vit-b-32", "ViT-B-32.pt",
              f"{_CLIP}/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
              "CLIP saliency for the starting points",
              sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"),
    ModelFile("inspyrenet-base", "ckpt_base.pth", f"{_TB}/ckpt_base.pth", "InSPyReNet masking (base)",
              md5="d692e3dd5fa1b9658949d452bebf1cda"),
    ModelFile("inspyrenet-fast", "ckpt_fast.pth", f"{_TB}/ckpt_fast.pth", "InSPyReNet masking (fast)",
              md5="9efdbfbcc49b79ef0f7891c83d2fd52f"),
    # rembg's source (sessions/dis_general_use.py) gives the md5 of its ISNet release.
    ModelFile("isnet-general-use", "isnet-general-use.onnx", f"{_REMBG}/isnet-general-use.onnx",
              "ISNet masking (DIS general use, full precision)", md5="fc16ebd8b0c10d971d3513d564d01e29",
              licence="rembg's release (rembg: MIT; the network and weights are DIS's, Apache-2.0)"),
    # IMG.LY's package lists each chunk's SHA-256; the whole files' were recorded here.
    ModelFile("isnet-imgly-medium", "isnet-imgly-medium.onnx", f"npm:{_IMGLY}:/models/medium",
              "ISNet masking (DIS general use, half-precision weights)",
              sha256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb", size=88188479,
              licence=_IMGLY_LICENCE, npm=_IMGLY, npm_resource="/models/medium"),
    ModelFile("isnet-imgly-small", "isnet-imgly-small.onnx", f"npm:{_IMGLY}:/models/small",
              "ISNet masking (8-bit weights; misses small subjects, not chosen by auto)",
              sha256="7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a", size=44342436,
              licence=_IMGLY_LICENCE, npm=_IMGLY, npm_resource="/models/small"),
    ModelFile("cotracker3-offline", "scaled_offline.pth", f"{_COTRACKER}/scaled_offline.pth",
              "CoTracker3 tracking (offline predictor)"),
    ModelFile("cotracker3-online", "scaled_online.pth", f"{_COTRACKER}/scaled_online.pth",
              "CoTracker3 online predictor (not used: the engine tracks every window offline)"),
]}


def home() -> str:
    explicit = os.environ.get("DYNASKETCH_HOME")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "dynasketch")


def cache_home() -> str:
    """Where the engine keeps what it makes beside the weights (per-clip mask caches, the
    masking package's config): the model folder, or, when that cannot be written (a shared,
    read-only copy of the weights), a folder of this user's in the temporary folder."""
    for folder in (home(), os.path.join(tempfile.gettempdir(), f"dynasketch-{_user()}")):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise EngineError(f"neither {home()} nor the temporary folder can be written; set "
                      "DYNASKETCH_HOME to a folder you can write to")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (a container): one folder for all
        return "user"


def lookup(name: str) -> ModelFile:
    if name not in MODELS:
        raise EngineError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def path_of(model: ModelFile, folder: str | None = None) -> str:
    return os.path.join(folder or home(), model.filename)


def file_digest(path: str, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(model: ModelFile, path: str, thorough: bool = False) -> str | None:
    """None if ``path`` is a good copy of ``model``, else what is wrong with it.

    A file whose checksum matched is remembered (``<file>.verified``: its size, modification
    time, inode and checksum), so later runs skip hashing a gigabyte of weights until the file
    changes; ``thorough`` hashes anyway (``dynasketch models verify``)."""
    if not os.path.isfile(path):
        return "missing"
    model = with_recorded_checksum(model, path)
    size = os.path.getsize(path)
    if model.size is not None and size != model.size:
        return f"wrong size ({size} bytes, expected {model.size})"
    if not (model.sha256 or model.md5):
        return None
    if not thorough and _stamp(model, path) == _read(path + ".verified"):
        return None
    if model.sha256 and file_digest(path, "sha256") != model.sha256:
        return "wrong checksum (sha256)"
    if model.md5 and file_digest(path, "md5") != model.md5:
        return "wrong checksum (md5)"
    if not path.endswith(".part"):
        remember_good(model, path)
    return None


def with_recorded_checksum(model: ModelFile, path: str) -> ModelFile:
    """``model`` with the SHA-256 its download was checked against (``<file>.sha256``, which
    ``download`` writes for a file the table has no checksum for), when there is one."""
    if model.sha256 or model.md5:
        return model
    recorded = (_read(path + ".sha256") or "").strip().lower()
    if len(recorded) == 64 and all(c in "0123456789abcdef" for c in recorded):
        return dataclasses.replace(model, sha256=recorded)
    return model


def _stamp(model: ModelFile, path: str) -> str:
    st = os.stat(path)
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino} {model.checksum}\n"


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def remember_good(model: ModelFile, path: str) -> None:
    """Note that ``path`` matched its checksum (see ``check_file``); a read-only folder is fine."""
    _write(path + ".verified", _stamp(model, path))


def _write(path: str, text: str) -> None:
    """``text`` into ``path`` atomically; nothing where the folder cannot be written."""
    try:
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    except OSError:
        pass


def describe(path: str, problem: str) -> str:
    """``path`` and what ``check_file`` found wrong with it, as a phrase for an error line."""
    return f"{path} is missing" if problem == "missing" else f"{path} has a {problem}"


def require(name: str, folder: str | None = None) -> str:
    """The path of a good copy of model ``name``, or an EngineError saying how to get one."""
    model = lookup(name)
    path = path_of(model, folder)
    problem = check_file(model, path) if os.path.isfile(path) else "missing"
    if problem:
        raise EngineError(f"model file {describe(path, problem)}; run `dynasketch models download {name}`")
    return path


def source_url(model: ModelFile) -> str:
    """Where ``model`` is fetched from: its public URL, or ``$DYNASKETCH_MODEL_MIRROR/<file>``."""
    mirror = os.environ.get("DYNASKETCH_MODEL_MIRROR", "").strip()
    return f"{mirror.rstrip('/')}/{model.filename}" if mirror else model.url


def download(model: ModelFile, folder: str | None = None, progress: bool = True,
             timeout: float = 60.0, report: Callable[[int, int | None], None] | None = None) -> str:
    """Fetch ``model`` into ``folder``; resumes a partial download; returns its path.
    ``progress``: a tqdm bar on stderr; ``report(done, total)``: bytes so far, as they come."""
    folder = folder or home()
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"cannot create the model folder {folder} ({exc.strerror}); set "
                          "DYNASKETCH_HOME to a folder you can write to") from None
    final = path_of(model, folder)
    if check_file(model, final, thorough=True) is None:    # asked for: hash it anyway
        return final
    if model.npm and not os.environ.get("DYNASKETCH_MODEL_MIRROR", "").strip():
        from .npm_models import assemble

        return _keep(model, assemble(model, final + ".part", progress, report), final)
    url = source_url(model)
    part = final + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    linked = _LinkedHeaders()
    try:
        response = urllib.request.build_opener(linked).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:                   # the part file is already complete
            response = None
        else:
            raise EngineError(f"download of {model.name} failed: HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EngineError(f"download of {model.name} failed: {getattr(exc, 'reason', exc)} "
                          f"({url}); run the same command again to resume") from None
    if response is not None:
        with response:
            resumed = have and response.status == 206
            if not resumed:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else model.size
            linked.seen(response.headers)
            _copy(response, part, "ab" if resumed else "wb", have, total, model.filename, progress, report)
    return _keep(model, part, final, linked)


def _keep(model: ModelFile, part: str, final: str, linked: "_LinkedHeaders | None" = None) -> str:
    """Check the downloaded ``part`` and move it to ``final``; a bad one is deleted."""
    published = bool(model.sha256 or model.md5)
    vouched = not published and linked is not None and linked.sha256
    if vouched:                                                # the server's word for the file
        model = dataclasses.replace(model, sha256=linked.sha256, size=model.size or linked.size)
    problem = check_file(model, part)
    if problem:
        expected = model.size
        if problem.startswith("wrong size") and expected and os.path.getsize(part) < expected:
            raise EngineError(f"download of {model.name} stopped early ({os.path.getsize(part)} of "
                              f"{expected} bytes); run the same command again to resume")
        os.unlink(part)
        raise EngineError(f"download of {model.name} is corrupt: {problem}; it was deleted and "
                          f"{final} was left as it was")
    os.replace(part, final)
    if vouched:
        _write(final + ".sha256", model.sha256 + "\n")
    elif not published:
        _forget(final + ".sha256")                             # an earlier download's, of another file
    remember_good(model, final)
    return final


def _forget(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _LinkedHeaders(urllib.request.HTTPRedirectHandler):
    """Follows redirects and keeps Hugging Face's description of the file it redirects to:
    ``X-Linked-Etag`` (a stored large file's SHA-256) and ``X-Linked-Size``."""

    sha256: str | None = None
    size: int | None = None

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.seen(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)

    def seen(self, headers) -> None:
        etag = (headers.get("X-Linked-Etag") or "").removeprefix("W/").strip('"').lower()
        if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag):
            self.sha256 = etag
        if (headers.get("X-Linked-Size") or "").isdigit():
            self.size = int(headers["X-Linked-Size"])


def _copy(response, path: str, mode: str, have: int, total: int | None, label: str, progress: bool,
          report: Callable[[int, int | None], None] | None = None) -> None:
    from tqdm import tqdm

    try:
        out = open(path, mode)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    with out, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=label,
                   disable=not progress) as bar:
        while True:
            try:
                block = response.read(1 << 16)
            except (OSError, urllib.error.URLError) as exc:
                raise EngineError(f"download of {label} was cut off ({exc}); run the same command "
                                  "again to resume") from None
            if not block:
                break
            try:
                out.write(block)
                out.flush()
            except OSError as exc:
                raise _cannot_write(path, exc) from None
            bar.update(len(block))
            have += len(block)
            if report is not None:
                report(have, total)
    if total is not None and os.path.getsize(path) < total:
        raise EngineError(f"download of {label} stopped early ({os.path.getsize(path)} of {total} "
                          "bytes); run the same command again to resume")


def _cannot_write(path: str, exc: OSError) -> EngineError:
    """A model file that cannot be written (a full disk, a folder not the user's): what to do."""
    return EngineError(f"cannot write {path}: {exc.strerror}; free some space or set DYNASKETCH_HOME "
                       "to another folder, then run the same command again to resume")


def command(action: str, names: list[str], progress: str = "bar") -> int:
    """``dynasketch models ACTION [NAME ...]``; ``progress`` (bar, json or none) for downloads."""
    every = not names or names == ["all"]
    chosen = list(MODELS.values()) if every else [lookup(n) for n in names]
    if action == "path":
        print(home() if every else "\n".join(path_of(m) for m in chosen))
        return 0
    if action == "list":
        print(f"folder: {home()}")
        for m in chosen:
            state = check_file(m, path_of(m)) if os.path.exists(path_of(m)) else "missing"
            print(f"  {m.name:20} {m.filename:24} {state or 'ok':16} {m.used_by}")
            if m.licence:
                print(f"  {'':20} licence: {m.licence}")
        return 0
    if action == "verify":
        bad = 0
        for m in chosen:
            problem = check_file(m, path_of(m), thorough=True)
            bad += problem is not None
            print(f"{m.name}: {problem or 'ok'} ({path_of(m)}; checksum "
                  f"{with_recorded_checksum(m, path_of(m)).checksum})")
        return 1 if bad else 0
    if action == "download":
        if not names:
            raise EngineError("name the models to download, e.g. `dynasketch models download clip-rn101`, "
                              "or `all`")
        if progress == "json":
            return _download_with_json_lines(chosen)
        for m in chosen:
            print(f"{m.name}: {download(m, progress=progress == 'bar')}")
        return 0
    raise EngineError(f"models {action!r}: choose list, download, verify or path")


def _download_with_json_lines(chosen: list[ModelFile]) -> int:
    """``models download --progress json``: the contract's JSON lines (docs/CONTRACT.md), stage
    ``download``, ``done``/``total`` in bytes of the current file, ``file`` of ``files``."""
    import time

    from .progress import JsonProgress

    lines = JsonProgress()
    lines.current = ("download", 0, 0)
    lines.emit("start", f"{len(chosen)} model file(s) into {home()}", out=home())
    for i, model in enumerate(chosen):
        about = dict(file=i, files=len(chosen), model=model.name)
        said = [0.0]

        def report(done: int, total: int | None) -> None:
            if time.monotonic() - said[0] >= 0.2 or done == total:     # a few lines a second
                said[0] = time.monotonic()
                lines.current = ("download", done, total or 0)
                lines.emit("progress", f"{model.filename} ({i + 1} of {len(chosen)})", **about)
                if lines.reader_gone:        # the program reading the lines exited: stop as on Ctrl-C
                    raise KeyboardInterrupt

        lines.current = ("download", 0, model.size or 0)
        lines.emit("progress", f"{model.filename} ({i + 1} of {len(chosen)})", **about)
        try:
            download(model, progress=False, report=report)
        except EngineError as exc:
            lines.emit("error", str(exc), **about)
            raise
    lines.current = ("download", len(chosen), len(chosen))
    lines.emit("done", f"{len(chosen)} model file(s) ready in {home()}", out=home())
    return 0
