#!/usr/bin/env bash
# Install everything vidspan and its tests need on a fresh Debian/Ubuntu machine (idempotent).
#   1. FFmpeg (CLI for test clips + shared libraries for torchcodec), if missing
#   2. torch 2.13.0 FIRST, so nothing later pulls a multi-GB CUDA build on CPU machines
#   3. vidspan with the local-inference and test extras, torchvision/torchcodec/qwen-vl-utils without deps
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO=sudo

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  echo "[vidspan] installing FFmpeg" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
fi

if ! command -v chromium >/dev/null; then
  echo "[vidspan] installing Chromium (headless tests of the timeline page)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  echo "[vidspan] installing torch 2.13.0" >&2
  pip_install torch==2.13.0
fi
echo "[vidspan] installing vidspan[qwen,test,eval,index,server,postgres,train,points,ray,mcp,export,embed]" >&2
pip_install -e ".[qwen,test,eval,index,server,postgres,train,points,ray,mcp,export,embed]" "torch==2.13.0" "transformers==5.23.0" \
  "trl==1.16.0" "peft==0.21.2" "datasets==5.2.0" "accelerate==1.16.0" "sentence-transformers==6.3.0" \
  "faiss-cpu==1.15.1"
# torchvision (needed by transformers' video processors), torchcodec and qwen-vl-utils (benchmark baseline):
# --no-deps so pip can never swap the torch build. torchcodec 0.13.0 is the CPU build that matches torch 2.13.
pip_install --no-deps torchvision==0.28.0 torchcodec==0.13.0 qwen-vl-utils==0.0.14
echo "[vidspan] ready: $("$PY" -c 'import vidspan, torch, transformers; print("vidspan", vidspan.__version__, "torch", torch.__version__, "transformers", transformers.__version__)')" >&2
