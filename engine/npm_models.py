"""Weight files that a registry package ships: fetched with ``npm pack`` (through npm's own
configuration: its registry, proxy and cache) and assembled from the package's chunks.

IMG.LY's ``@imgly/background-removal-data`` keeps each model as chunk files named by their
SHA-256; ``dist/resources.json`` lists, for a resource such as ``/models/medium``, the chunks
in order with their byte offsets. Each chunk is checked against its name, and the whole file
against the model table's checksum (``models._keep``), before it replaces anything.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from typing import Callable

from .errors import EngineError
from .models import _cannot_write

NPM_TIMEOUT = 900.0


def pack(spec: str, folder: str, timeout: float = NPM_TIMEOUT) -> str:
    """``npm pack spec`` into ``folder``; the path of the package's tarball."""
    npm = shutil.which("npm")
    if npm is None:
        raise EngineError(f"{spec} is fetched with npm, which is not installed: install Node.js "
                          "(with npm) and run the same command again")
    try:
        done = subprocess.run([npm, "pack", spec, "--pack-destination", folder, "--prefer-offline",
                               "--silent"], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise EngineError(f"npm pack {spec} took over {timeout:.0f} s; check the network and run "
                          "the same command again") from None
    tarballs = [f for f in os.listdir(folder) if f.endswith(".tgz")]
    if done.returncode != 0 or not tarballs:
        lines = [l for l in (done.stderr or done.stdout).splitlines() if l.strip()]
        why = lines[-1].strip() if lines else f"exit code {done.returncode}"
        raise EngineError(f"npm pack {spec} failed ({why}); check npm's network settings and run "
                          "the same command again")
    return os.path.join(folder, tarballs[0])


def extract(tarball: str, resource: str, part: str, progress: bool = True,
            report: Callable[[int, int | None], None] | None = None) -> str:
    """Concatenate ``resource``'s chunks from the package ``tarball`` into ``part``."""
    from tqdm import tqdm

    with tarfile.open(tarball) as package:
        try:
            listing = json.load(package.extractfile("package/dist/resources.json"))
            entry = listing[resource]
        except (KeyError, json.JSONDecodeError):
            raise EngineError(f"{os.path.basename(tarball)} has no {resource}; is it the package "
                              "version the engine names?") from None
        total = entry.get("size")
        try:
            out = open(part, "wb")
        except OSError as exc:
            raise _cannot_write(part, exc) from None
        with out, tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(part),
                       disable=not progress) as bar:
            for chunk in entry["chunks"]:
                data = package.extractfile(f"package/dist/{chunk['hash']}").read()
                if hashlib.sha256(data).hexdigest() != chunk["hash"] or out.tell() != chunk["offsets"][0]:
                    raise EngineError(f"a chunk of {resource} in {os.path.basename(tarball)} is "
                                      "damaged; run the same command again")
                try:
                    out.write(data)
                except OSError as exc:
                    raise _cannot_write(part, exc) from None
                bar.update(len(data))
                if report is not None:
                    report(out.tell(), total)
    return part


def assemble(model, part: str, progress: bool = True,
             report: Callable[[int, int | None], None] | None = None) -> str:
    """The file of ``model`` (a ``models.ModelFile`` with ``npm``) assembled into ``part``."""
    folder = os.path.dirname(part)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".npm-") as scratch:
        tarball = pack(model.npm, scratch)
        return extract(tarball, model.npm_resource, part, progress, report)
