#!/usr/bin/env bash
# Installs gristmill and everything its default pipeline and tests need into the active
# virtualenv. torch is pinned first to the CPU build (a plain `torch` requirement would pull a
# multi-GB CUDA build), and PyPI's torchvision family, which breaks `transformers` imports next
# to that build, is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[dev]"
python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
