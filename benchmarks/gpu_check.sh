#!/usr/bin/env bash
# The GPU check, in one go on a machine with a CUDA GPU and this repository checked out:
#   1. a virtual environment (.venv-gpu-check, with the system's site-packages so that an installed CUDA
#      build of torch is used as it is) with the project and its test extras: pip install -e '.[test]';
#      the CUDA build of torch first, only when torch is not importable with CUDA;
#   2. the CUDA tests: pytest -k cuda tests/test_torch.py, ffnn's warnings (a step that could not be
#      captured in a CUDA graph) made errors;
#   3. ffnn bench --gpu --quick, its numbers in benchmarks/results/gpu_bench_<date>.json;
#   4. the elapsed time. The whole run finishes in under 8 minutes: each phase runs under `timeout`,
#      its limit cut to what is left of FFNN_GPU_CHECK_BUDGET (470 s); on one H200, with torch installed,
#      the phases are expected to fit in it (not yet measured there).
#
#   bash benchmarks/gpu_check.sh
#
# Environment:
#   FFNN_GPU_CHECK_DRY=1        print the commands, run nothing
#   FFNN_GPU_CHECK_NO_VENV=1    use the current python (no virtual environment)
#   FFNN_GPU_CHECK_NO_INSTALL=1 install nothing (the current environment already has the project and its test extras)
#   FFNN_GPU_CHECK_PIP_ARGS     extra arguments for pip install (offline: --no-index --find-links DIR --no-build-isolation)
#   FFNN_GPU_CHECK_TORCH_INDEX  where the CUDA build of torch comes from (default https://download.pytorch.org/whl/cu128)
#   FFNN_GPU_CHECK_FULL=1       the full bench instead of --quick (set a larger budget with it)
#   FFNN_GPU_CHECK_BUDGET       seconds for the whole script (default 470)
# Exit status: 0 when every phase passed, else that of the first phase that failed (124: a timeout).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DRY=${FFNN_GPU_CHECK_DRY:-0}
START=$SECONDS
BUDGET=${FFNN_GPU_CHECK_BUDGET:-470}
VENV=.venv-gpu-check
TORCH_INDEX=${FFNN_GPU_CHECK_TORCH_INDEX:-https://download.pytorch.org/whl/cu128}
read -r -a PIP_ARGS <<< "${FFNN_GPU_CHECK_PIP_ARGS:-}"
RESULT="benchmarks/results/gpu_bench_$(date +%Y-%m-%d).json"
BENCH_MODE=(--quick)
if [[ ${FFNN_GPU_CHECK_FULL:-0} == 1 ]]; then BENCH_MODE=(); fi

say() { echo "gpu_check: $*"; }

# phase NAME SECONDS COMMAND...: the command printed, then run under `timeout` (SECONDS, or what is left of
# the budget when that is less); the script stops when it fails
phase() {
    local name=$1 limit=$2 t0=$SECONDS rc=0 left
    shift 2
    left=$((BUDGET - (SECONDS - START)))
    ((limit < left)) || limit=$left
    printf '+ timeout %s' "$limit"
    printf ' %q' "$@"
    echo
    if [[ $DRY == 1 ]]; then return 0; fi
    if ((limit <= 0)); then
        say "$name: no time left of the ${BUDGET}s budget" >&2
        exit 124
    fi
    timeout "$limit" "$@" || rc=$?
    if ((rc == 124)); then
        say "$name timed out after ${limit}s" >&2
    elif ((rc != 0)); then
        say "$name failed (exit $rc)" >&2
    else
        say "$name done in $((SECONDS - t0))s"
        return 0
    fi
    say "elapsed $((SECONDS - START))s" >&2
    exit "$rc"
}

[[ $DRY == 1 ]] && say "dry run: the commands are printed, not run"

# 1. the environment
PY=python
if [[ ${FFNN_GPU_CHECK_NO_VENV:-0} == 1 ]]; then
    say "using the current python: $(command -v python || echo 'none found')"
else
    say "virtual environment $VENV (with the system's site-packages)"
    if [[ ! -x $VENV/bin/python ]]; then
        phase "creating the virtual environment" 60 python3 -m venv --system-site-packages "$VENV"
    fi
    PY=$VENV/bin/python
fi
CUDA_TORCH=(-c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)")
if [[ ${FFNN_GPU_CHECK_NO_INSTALL:-0} == 1 ]]; then
    say "installing nothing (FFNN_GPU_CHECK_NO_INSTALL=1)"
elif [[ $DRY == 1 ]]; then
    say "if '$PY ${CUDA_TORCH[*]}' fails, the CUDA build of torch first:"
    phase "installing torch (CUDA)" 240 "$PY" -m pip install ${PIP_ARGS[@]+"${PIP_ARGS[@]}"} torch==2.13.0 --index-url "$TORCH_INDEX"
    phase "installing ffnn[test]" 180 "$PY" -m pip install ${PIP_ARGS[@]+"${PIP_ARGS[@]}"} -e '.[test]'
else
    if "$PY" "${CUDA_TORCH[@]}" 2>/dev/null; then
        say "torch with CUDA is importable: $("$PY" -c 'import torch; print(torch.__version__)'); not installing torch"
    else
        say "torch with CUDA is not importable; installing the CUDA build of torch from $TORCH_INDEX"
        phase "installing torch (CUDA)" 240 "$PY" -m pip install ${PIP_ARGS[@]+"${PIP_ARGS[@]}"} torch==2.13.0 --index-url "$TORCH_INDEX"
    fi
    phase "installing ffnn[test]" 180 "$PY" -m pip install ${PIP_ARGS[@]+"${PIP_ARGS[@]}"} -e '.[test]'
fi
if [[ $DRY != 1 ]] && ! "$PY" "${CUDA_TORCH[@]}"; then
    say "PyTorch sees no CUDA device here; nothing to check" >&2
    exit 1
fi

# 2. the CUDA tests: ffnn's own warnings (their message begins "ffnn:") are errors, other UserWarnings not
phase "CUDA tests" 150 "$PY" -m pytest -q tests/test_torch.py -k cuda -W 'error:ffnn:UserWarning'

# 3. the bench
phase "results folder" 10 mkdir -p benchmarks/results
phase "ffnn bench --gpu" "$BUDGET" "$PY" -m ffnn bench --gpu ${BENCH_MODE[@]+"${BENCH_MODE[@]}"} --json "$RESULT"

# 4. the time
if [[ $DRY == 1 ]]; then
    say "dry run: nothing was run"
else
    say "all passed in $((SECONDS - START))s; the bench's numbers are in $RESULT"
fi
