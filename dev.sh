#!/usr/bin/env bash
# ./dev.sh demo  - set up, then sketch the project's own sample clip into demo/sketch/
# ./dev.sh test  - set up, then run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
case "${1:-}" in
  demo)
    mkdir -p demo
    .venv/bin/dynasketch sample demo/sample.mp4 --mask demo/sample.mask.mp4
    .venv/bin/dynasketch sketch demo/sample.mp4 --mask demo/sample.mask.mp4 --out demo/sketch --overwrite \
      --progress "$([ -t 2 ] && echo bar || echo json)" "${@:2}"
    .venv/bin/python build_addon.py >/dev/null 2>&1 && echo "demo: Blender add-on zip in dist/" || true
    echo "demo: open demo/sketch/preview.mp4; the sketch is demo/sketch/sketch.json (svg/ per frame)"
    ;;
  test)
    .venv/bin/python -m pytest -q "${@:2}"
    ;;
  *)
    echo "usage: ./dev.sh demo | ./dev.sh test" >&2
    exit 2
    ;;
esac
