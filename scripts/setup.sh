#!/usr/bin/env bash
# Install everything devise needs on a fresh Debian machine: apt packages (WordNet,
# GCIDE, the Noto emoji font, Open Clip Art for the clip-art test, GCompris' photos for `devise data photos`,
# Fashion-MNIST for scripts/photo_checks.py), a virtual environment with the package and its test
# extras, and the npm emoji sets. Safe to run again.
set -euo pipefail
VENV="${1:-.venv}"
cd "$(dirname "$0")/.."

APT_PACKAGES="wordnet-base wordnet-sense-index dict-gcide fonts-noto-color-emoji openclipart-png gcompris-qt-data dataset-fashion-mnist"
missing=""
for p in $APT_PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "==> apt-get install$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> python3 -m venv $VENV"
  python3 -m venv "$VENV"
fi
echo "==> pip install -e .[test,emoji,plot,demo]"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[test,emoji,plot,demo]'

if command -v npm >/dev/null 2>&1; then
  echo "==> npm install (emoji sets from @iconify-json)"
  npm install --no-audit --no-fund --loglevel=error >/dev/null
else
  echo "npm not found: the @iconify-json emoji sets will be skipped (apt-get install npm)"
fi
echo "==> set-up done"
