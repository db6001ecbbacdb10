#!/usr/bin/env bash
# Set up a fresh machine and caption a clip with the default model (Marlin-2B).
#   bash scripts/quickstart.sh [VIDEO] [extra 'vidspan caption' options]
# Without VIDEO, a sample clip from ../shared/data/videos is used when present, else a generated one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
VIDEO=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$VIDEO" ]; then
  if [ -f ../shared/data/videos/bottle-detection.mp4 ]; then
    VIDEO=../shared/data/videos/bottle-detection.mp4
  else
    VIDEO=${XDG_CACHE_HOME:-$HOME/.cache}/vidspan/demo.mp4
    mkdir -p "$(dirname "$VIDEO")"
    [ -f "$VIDEO" ] || ffmpeg -v error -y -f lavfi -i "testsrc2=size=640x360:duration=12:rate=30" \
      -c:v libx264 -pix_fmt yuv420p "$VIDEO"
  fi
fi
exec vidspan caption "$VIDEO" "$@"
