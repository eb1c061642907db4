"""Build the Blender extension zip: dist/dynasketch-<version>.zip.

    python build_addon.py [--out dist] [--no-validate] [--uv-platforms linux-x64,...]

The zip holds blender_manifest.toml and the add-on's Python files at its root, the engine as
one wheel (``engine_wheel/dynasketch-<version>-py3-none-any.whl``, built here with pip), the
constraints files that pin its dependencies per platform and compute backend
(``constraints/``), and uv's wheels for the chosen platforms (``wheels/``, listed in the
zip's manifest: Blender installs the one for its platform, and Install Engine runs it). uv's
wheels are fetched with pip once and kept in ``dist/uv-wheels`` (``--wheel-cache``). The zip is then checked with
Blender's own extension validator (``blender_ext.py validate``, plain Python, found inside an
installed ``bpy`` module), or with ``blender --command extension validate`` when a Blender
executable is on PATH (or in $BLENDER).
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.abspath(__file__))
ADDON = os.path.join(ROOT, "dynasketch_blender")
MANIFEST = os.path.join(ROOT, "blender_manifest.toml")
CONSTRAINTS = os.path.join(ROOT, "constraints")
UV_VERSION = "0.13.9"
WHEEL_CACHE = os.path.join(ROOT, "dist", "uv-wheels")     # uv's wheels, fetched once
# Blender's platform names -> the wheel tag pip fetches uv's wheel for
UV_PLATFORMS = {"linux-x64": "manylinux_2_17_x86_64", "linux-arm64": "manylinux_2_17_aarch64",
                "windows-x64": "win_amd64", "macos-arm64": "macosx_11_0_arm64"}


def manifest_version() -> str:
    text = open(MANIFEST, encoding="utf-8").read()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    if not match:
        sys.exit("build_addon: blender_manifest.toml has no version")
    return match.group(1)


def engine_wheel(out_dir: str) -> str:
    """The engine as one wheel, built from the project (its dependencies are not bundled)."""
    folder = os.path.join(out_dir, "engine-wheel")
    shutil.rmtree(folder, ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", folder, ROOT], capture_output=True, text=True)
    wheels = glob.glob(os.path.join(folder, "dynasketch-*-py3-none-any.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        sys.exit(f"build_addon: the engine wheel did not build:\n{done.stdout}{done.stderr}")
    return wheels[0]


def uv_wheels(folder: str, platforms: list[str]) -> list[str]:
    """uv's wheel for each Blender platform, fetched with pip once into ``folder``."""
    found = []
    for name in platforms:
        if name not in UV_PLATFORMS:
            sys.exit(f"build_addon: unknown platform {name!r}: choose from {', '.join(UV_PLATFORMS)}")
        tag = UV_PLATFORMS[name]
        pattern = os.path.join(folder, f"uv-{UV_VERSION}-*{tag}*.whl")
        have = glob.glob(pattern)
        if not have:
            done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                                   "--platform", tag, "-d", folder, f"uv=={UV_VERSION}"], capture_output=True, text=True)
            have = glob.glob(pattern)
            if done.returncode != 0 or not have:
                sys.exit(f"build_addon: cannot fetch uv {UV_VERSION} for {name}:\n{done.stdout}{done.stderr}")
        found.append(have[0])
    return found


def manifest_with(wheels: list[str], platforms: list[str]) -> str:
    """The manifest, listing the zip's wheels and the platforms they cover."""
    text = open(MANIFEST, encoding="utf-8").read().rstrip("\n") + "\n"
    if wheels:
        listed = ", ".join(f'"./wheels/{os.path.basename(w)}"' for w in wheels)
        head, sep, tail = text.partition("\n[")
        text = f"{head}\nplatforms = [{', '.join(repr(p).replace(chr(39), chr(34)) for p in platforms)}]\n" \
               f"wheels = [{listed}]\n{sep}{tail}"
    return text


def build(out_dir: str, platforms: list[str] | None = None, wheel_cache: str = WHEEL_CACHE) -> str:
    os.makedirs(out_dir, exist_ok=True)
    platforms = list(UV_PLATFORMS) if platforms is None else platforms
    path = os.path.join(out_dir, f"dynasketch-{manifest_version()}.zip")
    tmp = path + ".part"
    wheel = engine_wheel(out_dir)
    wheels = uv_wheels(wheel_cache, platforms)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("blender_manifest.toml", manifest_with(wheels, platforms))
        for file in sorted(glob.glob(os.path.join(ADDON, "**", "*.py"), recursive=True)):
            if "__pycache__" not in file:
                zf.write(file, os.path.relpath(file, ADDON))
        zf.write(wheel, "engine_wheel/" + os.path.basename(wheel))
        for file in sorted(glob.glob(os.path.join(CONSTRAINTS, "*.txt"))):
            zf.write(file, "constraints/" + os.path.basename(file))
        for file in wheels:
            zf.write(file, "wheels/" + os.path.basename(file), compress_type=zipfile.ZIP_STORED)
    os.replace(tmp, path)
    return path


def find_validator() -> str | None:
    """Blender's extension CLI: inside an installed bpy module, or beside a blender binary."""
    patterns = []
    try:
        import importlib.util

        spec = importlib.util.find_spec("bpy")
        if spec and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                patterns.append(os.path.join(loc, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py"))
    except (ImportError, ValueError):
        pass
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if found:
            return found[-1]
    return None


def find_blender() -> str | None:
    """A Blender executable: $BLENDER, or ``blender`` on PATH."""
    return os.environ.get("BLENDER") or shutil.which("blender")


def validate(zip_path: str) -> str:
    validator = find_validator()
    if validator is not None:
        command = [sys.executable, validator, "validate", zip_path]
    elif find_blender():
        validator = find_blender()
        command = [validator, "--factory-startup", "--command", "extension", "validate", zip_path]
    else:
        return "not validated (no Blender found on this machine)"
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"build_addon: {zip_path} failed Blender's validation:\n{done.stdout}{done.stderr}")
    return "validated by " + (os.path.relpath(validator, ROOT) if validator.startswith(ROOT) else validator)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "dist"))
    ap.add_argument("--no-validate", action="store_true")
    ap.add_argument("--uv-platforms", default=",".join(UV_PLATFORMS),
                    help="Blender platforms to ship uv for (default: all of " + ", ".join(UV_PLATFORMS) + ")")
    ap.add_argument("--wheel-cache", default=WHEEL_CACHE, help="where uv's wheels are kept once fetched")
    args = ap.parse_args()
    path = build(args.out, [p for p in args.uv_platforms.split(",") if p], args.wheel_cache)
    note = "" if args.no_validate else f" ({validate(path)})"
    print(f"{path}{note}")


if __name__ == "__main__":
    main()
