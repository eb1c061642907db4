#!/usr/bin/env bash
# Every GPU check in one go, for a machine with CUDA and PyTorch (one lease of the device):
#   bench/gpu.sh [paper] [long] [clip] [compile] [bank] [tests]   (default: paper clip tests)
# paper: bench/paper_run.py, the paper preset with every neural backend (100 frames, 1080p);
# long:  the same on a 10 s clip (250 frames at 25 fps) for $LONG_LIMIT s: its peak GPU memory;
# clip:  bench/clip_speed.py, one CLIPasso loss step (a profile of it), and the optimiser steps with
#        the encoder as first measured and as now; tests: the suite (not the add-on) on CUDA;
# compile: the optimiser steps without and with torch.compile on the encoder, compile time shown
# (DYNASKETCH_COMPILE=1 bench/gpu.sh paper: the whole run with it);
# bank: the loss and optimiser steps without and with a view bank of $BANK warps a frame
# (DYNASKETCH_VIEW_BANK=64 bench/gpu.sh paper: the whole run with it).
# $CLIP is the footage (default: the procedural sample); logs go to $OUT (default /tmp/gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT/gpu.txt"
for what in "${@:-paper clip tests}"; do
  for w in $what; do
    case "$w" in
      paper) $PY bench/paper_run.py ${CLIP:+--clip "$CLIP"} --frames 100 --limit "${PAPER_LIMIT:-360}" \
               --size 1920x1080 --device cuda --work /tmp/paper-run ${PAPER_ARGS:-} 2>"$OUT/paper.err" \
               | tee "$OUT/paper.txt"; tail -5 "$OUT/paper.err" ;;
      long) $PY bench/paper_run.py ${CLIP:+--clip "$CLIP"} --frames 250 --limit "${LONG_LIMIT:-150}" \
               --size 1920x1080 --device cuda --work /tmp/paper-long ${PAPER_ARGS:-} 2>"$OUT/long.err" \
               | tee "$OUT/long.txt" | tail -12; tail -5 "$OUT/long.err" ;;
      clip) timeout 120 $PY bench/clip_speed.py --device cuda --profile "$OUT/profile.txt" 2>&1 \
               | tee "$OUT/clip_speed.txt"
            timeout 90 $PY bench/clip_speed.py --device cuda --encoder 2>&1 | tee "$OUT/clip_encoder.txt" ;;
      compile) timeout "${COMPILE_LIMIT:-400}" $PY bench/clip_speed.py --device cuda --compile 2>&1 \
               | tee "$OUT/clip_compile.txt" | grep -v Warning ;;
      bank) timeout 200 $PY bench/clip_speed.py --device cuda --bank "${BANK:-64}" 2>&1 \
               | tee "$OUT/clip_bank.txt" ;;
      tests) timeout "${TESTS_LIMIT:-200}" $PY -m pytest -q -p no:cacheprovider tests --ignore=tests/addon \
               2>&1 | tee "$OUT/tests.log" | tail -15 ;;
    esac
  done
done
