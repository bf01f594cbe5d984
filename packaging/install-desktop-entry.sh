#!/usr/bin/env bash
# Add segstudio to the desktop's application menu for the current user (no root needed).
#
# build.sh puts this script beside the frozen app's executable (dist/segstudio/); run it from there:
#   dist/segstudio/install-desktop-entry.sh            # install
#   dist/segstudio/install-desktop-entry.sh --remove   # uninstall
# It writes $XDG_DATA_HOME/applications/segstudio.desktop (Exec pointing at this folder's executable)
# and the icon in every size under $XDG_DATA_HOME/icons/hicolor/. Moving the folder later needs a re-run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
ENTRY="$DATA_HOME/applications/segstudio.desktop"
SIZES="16 24 32 48 64 128 256"

if [ "${1:-}" = "--remove" ]; then
    rm -f "$ENTRY"
    for s in $SIZES; do rm -f "$DATA_HOME/icons/hicolor/${s}x${s}/apps/segstudio.png"; done
    echo "removed $ENTRY and the icons"
    exit 0
fi

EXE="$HERE/segstudio"
ICONS="$HERE/_internal/resources/icons"
if [ ! -x "$EXE" ] || [ ! -f "$HERE/segstudio.desktop" ]; then
    echo "install-desktop-entry.sh: run the copy inside the built app folder (dist/segstudio/)" >&2
    exit 1
fi

case "$EXE" in
    *[\"\\\`\$\|\&%]*)
        # These would need escaping in the Exec key (or in the sed below); a plain folder name is simpler.
        echo "install-desktop-entry.sh: the app's path $EXE contains one of \" \\ \` \$ | & %;" \
             "move the app folder to a path without them" >&2
        exit 1 ;;
esac

mkdir -p "$DATA_HOME/applications"
# Quote the path for the Exec key (spaces are allowed in it); TryExec takes it unquoted.
sed -e "s|^Exec=segstudio |Exec=\"$EXE\" |" -e "s|^TryExec=segstudio\$|TryExec=$EXE|" \
    "$HERE/segstudio.desktop" > "$ENTRY.tmp"
mv "$ENTRY.tmp" "$ENTRY"
for s in $SIZES; do
    install -D -m 644 "$ICONS/segstudio-$s.png" "$DATA_HOME/icons/hicolor/${s}x${s}/apps/segstudio.png"
done
command -v update-desktop-database >/dev/null && update-desktop-database "$DATA_HOME/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA_HOME/icons/hicolor" || true
echo "installed $ENTRY (Exec=$EXE)"
