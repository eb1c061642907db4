"""Build the Blender extension zip: dist/dynasketch-<version>.zip.

    python build_addon.py [--out dist] [--no-validate]

The zip holds blender_manifest.toml and the add-on's Python files at its root. It is then
checked with Blender's own extension validator (``blender_ext.py validate``, plain Python,
found inside an installed ``bpy`` module), or with ``blender --command extension validate``
when a Blender executable is on PATH (or in $BLENDER).
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


def manifest_version() -> str:
    text = open(MANIFEST, encoding="utf-8").read()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    if not match:
        sys.exit("build_addon: blender_manifest.toml has no version")
    return match.group(1)


def build(out_dir: str) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"dynasketch-{manifest_version()}.zip")
    tmp = path + ".part"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(MANIFEST, "blender_manifest.toml")
        for file in sorted(glob.glob(os.path.join(ADDON, "**", "*.py"), recursive=True)):
            if "__pycache__" not in file:
                zf.write(file, os.path.relpath(file, ADDON))
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
    args = ap.parse_args()
    path = build(args.out)
    note = "" if args.no_validate else f" ({validate(path)})"
    print(f"{path}{note}")


if __name__ == "__main__":
    main()
