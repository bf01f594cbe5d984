#!/usr/bin/env bash
# Build segstudio's frozen app (one folder, CPU/ONNX only, no torch) into dist/segstudio/.
#
#   packaging/build.sh            # makes or reuses the build environment build/pkgvenv
#   BUILD_VENV=/tmp/pkgvenv packaging/build.sh
#   PYTHON=python3.12 packaging/build.sh   # the interpreter the environment is made from
#
# The build environment gets the project's base install (`pip install .`: no torch) and PyInstaller;
# it never gets torch, so nothing torch-related can slip into the bundle even if an exclusion is
# missed. Models: whatever model files models/ holds are bundled (none: the app says so on its
# welcome page). Afterwards: packaging/smoke_test.sh checks the result.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python3}"
BUILD_VENV="${BUILD_VENV:-$REPO/build/pkgvenv}"
DIST="$REPO/dist"
WORK="$REPO/build/pyinstaller"
APP="$DIST/segstudio"

if [ ! -x "$BUILD_VENV/bin/python" ]; then
    echo "== making the build environment $BUILD_VENV"
    "$PYTHON" -m venv "$BUILD_VENV"
    "$BUILD_VENV/bin/python" -m pip install --quiet --upgrade pip
fi
echo "== installing segstudio's base dependencies and PyInstaller (no torch)"
"$BUILD_VENV/bin/python" -m pip install --quiet . pyinstaller
if "$BUILD_VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
    echo "build.sh: $BUILD_VENV has torch installed; the frozen app is the torch-free build:" \
         "use a fresh environment (BUILD_VENV=...)" >&2
    exit 1
fi

echo "== PyInstaller"
start=$(date +%s)
"$BUILD_VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" packaging/segstudio.spec
echo "PyInstaller took $(( $(date +%s) - start )) s"

# Python's own library and extension modules keep their debug sections when the interpreter was built
# from source (pyenv: some 17 MB). Drop those sections only (symbols stay, so tracebacks and profilers
# still work); the wheels' libraries come stripped already and are left alone (auditwheel-patched
# libraries are better not rewritten).
if command -v strip >/dev/null; then
    find "$APP/_internal" -maxdepth 1 -type f -name 'libpython3*.so*' -exec strip --strip-debug {} +
    find "$APP/_internal" -path '*/lib-dynload/*.so' -type f -exec strip --strip-debug {} +
fi

# The desktop entry and its installer sit beside the executable, outside _internal/.
cp packaging/segstudio.desktop "$APP/segstudio.desktop"
cp packaging/install-desktop-entry.sh "$APP/install-desktop-entry.sh"
chmod +x "$APP/install-desktop-entry.sh"

if [ -d "$APP/_internal/torch" ] || ls "$APP/_internal" | grep -q -i '^libtorch'; then
    echo "build.sh: torch ended up in the bundle" >&2
    exit 1
fi

echo "== result: $APP"
du -sh "$APP"
echo "largest parts of _internal/:"
du -s "$APP/_internal"/* | sort -rn | head -12 | awk '{ printf "  %7.1f MB  %s\n", $1 / 1024, $2 }' \
    | sed "s|$APP/_internal/||"
