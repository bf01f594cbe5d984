#!/usr/bin/env bash
# Smoke test of the frozen app built by packaging/build.sh (run by hand; docs/PACKAGING.md has a recorded run).
#
#   packaging/smoke_test.sh [MODEL.onnx]
#   APP=dist/segstudio OUT=/tmp/smoke packaging/smoke_test.sh my.onnx
#
# Without MODEL it uses the model the app ships, models/camvid-fastscnn.onnx inside the bundle: the GUI
# step then runs plain `--smoke`, so the app finds its default model itself.
#
# Runs the frozen executable from an empty folder with a minimal environment (no PYTHONPATH, no venv,
# HOME in a temporary folder), so that it can use only what the bundle holds:
#   1. the GUI offscreen: `segstudio --smoke` opens the bundled sample images, segments the first with
#      MODEL inside the GUI process, shows and saves the prediction, saves a screenshot, and quits;
#   2. the CLI: `segstudio segment` on the bundled resources/samples with MODEL, with overlays;
#   3. `segstudio --help` and `segstudio models --files`.
# Prints the size of the app and the time of each step; exit status 0 when all passed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="$(cd "${APP:-$REPO/dist/segstudio}" && pwd)"
BUNDLED_MODEL="$APP/_internal/models/camvid-fastscnn.onnx"
MODEL="${1:-$BUNDLED_MODEL}"
OUT="${OUT:-$(mktemp -d -t segstudio-smoke-XXXXXX)}"
EXE="$APP/segstudio"
SAMPLES="$APP/_internal/resources/samples"

if [ ! -x "$EXE" ]; then
    echo "smoke_test.sh: no frozen app at $APP (run packaging/build.sh first)" >&2
    exit 1
fi
if [ ! -f "$MODEL" ]; then
    echo "smoke_test.sh: no model at $MODEL (the app ships none yet); pass an .onnx model file as the first" \
         "argument" >&2
    exit 1
fi
MODEL="$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")"
GUI_MODEL_ARGS=()
if [ $# -gt 0 ]; then GUI_MODEL_ARGS=(--smoke-model="$MODEL"); fi
mkdir -p "$OUT/home" "$OUT/run"
OUT="$(cd "$OUT" && pwd)"

# A clean environment: what the frozen app needs must come from the bundle (and the system's libc, X/GL).
run() {
    (cd "$OUT/run" && env -i PATH=/usr/bin:/bin HOME="$OUT/home" XDG_RUNTIME_DIR="$OUT/home" \
        QT_QPA_PLATFORM=offscreen LANG=C.UTF-8 "$@")
}
seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(seconds)" 'BEGIN { printf "%.1f", b - a }'; }

echo "== app: $APP"
echo "size: $(du -sh "$APP" | cut -f1) ($(du -sb "$APP" | cut -f1) bytes, $(find "$APP" -type f | wc -l) files)"
if [ -e "$APP/_internal/torch" ]; then
    echo "FAILED: torch is in the bundle" >&2
    exit 1
fi
echo "model: $MODEL ($(du -h "$MODEL" | cut -f1))"

echo "== 1. GUI offscreen: segstudio --smoke"
t=$(seconds)
run "$EXE" --smoke "${GUI_MODEL_ARGS[@]}" --smoke-screenshot="$OUT/smoke-window.png" 2>"$OUT/gui-stderr.txt"
echo "GUI smoke run: $(elapsed "$t") s (start to exit)"

echo "== 2. CLI: segstudio segment $SAMPLES"
t=$(seconds)
run "$EXE" segment "$SAMPLES" -o "$OUT/segmented" --model "$MODEL" --overlay
echo "CLI segment run: $(elapsed "$t") s (start to exit)"
want=$(find "$SAMPLES" -maxdepth 1 -name '*.png' | wc -l)
got=$(find "$OUT/segmented" -maxdepth 1 -name '*.png' ! -name '*.overlay.png' | wc -l)
if [ "$got" -ne "$want" ] || [ "$want" -eq 0 ]; then
    echo "FAILED: $got label maps for $want sample images" >&2
    exit 1
fi
echo "label maps: $got of $want, overlays: $(find "$OUT/segmented" -name '*.overlay.png' | wc -l)"

echo "== 3. CLI: segstudio --help, segstudio models --files"
t=$(seconds)
run "$EXE" --help | head -n 1
echo "--help: $(elapsed "$t") s"
run "$EXE" models --files --dir "$(dirname "$MODEL")"

echo "== passed; outputs in $OUT"
