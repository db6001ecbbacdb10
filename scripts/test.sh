#!/usr/bin/env bash
# Install what the tests need (idempotent), then run the whole offline suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export HF_HUB_OFFLINE=1
exec "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider "$@"
