#!/usr/bin/env bash
# One command for a GPU machine: build ssmkit for the local GPU, run every test (host, gpu,
# Python), compute-sanitizer (memcheck, racecheck, initcheck, synccheck) over a reduced grid,
# and the benchmark (before the sanitizers); print a short summary at the end.
#
#   tests/gpu_check.sh [build-dir]      (env: SSMKIT_ARCH=90 to pick the architecture,
#                                         OUT=dir for logs and bench JSON, SKIP_BENCH=1,
#                                         SANITIZE_TIMEOUT=seconds per sanitizer tool,
#                                         QUICK=1: build and run only the GPU tests and the
#                                         benchmark (no ctest, no sanitizers),
#                                         SWEEPS="16 split conv1d ...": after the benchmark,
#                                         run these sweeps (ssmkit_sweep modes; "conv1d" and
#                                         "state_update" their own binaries) into
#                                         $OUT/sweeps.txt; implies -DSSMKIT_BENCH_SWEEP=ON,
#                                         PREBUILT=1: use the binaries already in build-dir
#                                         (built elsewhere for this GPU's architecture), no
#                                         configure, build or ctest; the sanitizers run
#                                         unless QUICK is set too),
#                                         SANITIZE_TOOLS="memcheck racecheck": the sanitizer
#                                         tools to run (default all four),
#                                         SANITIZE_EARLY=1: run the sanitizers alongside the
#                                         GPU tests (neither is timed), before the benchmark,
#                                         GPU_TESTS="[conv1d],[conv]": a Catch2 test spec for
#                                         the GPU tests (default all),
#                                         SANITIZE_SPEC="[conv1d][sanitize]": the sanitizers'
#                                         test spec (default "[sanitize],[device]"))
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
out=${OUT:-$build/out}
mkdir -p "$out"
arch=${SSMKIT_ARCH:-native}
prefix=()
[ -d .deps/usr ] && prefix=(-DCMAKE_PREFIX_PATH="$PWD/.deps/usr")
summary=()
note() { summary+=("$1"); }

sweeps=${SWEEPS:-}
# The binary of sweep mode $1: conv1d and state_update have their own, the rest are modes of
# ssmkit_sweep.
sweep_binary() { case $1 in conv1d|state_update) echo "ssmkit_sweep_$1" ;; *) echo ssmkit_sweep ;; esac; }
options=()
targets=()
[ -n "$sweeps" ] && options+=(-DSSMKIT_BENCH_SWEEP=ON)
if [ -n "${QUICK:-}" ]; then
  options+=(-DSSMKIT_BUILD_PYTHON=OFF)
  targets=(--target ssmkit_gpu_tests ssmkit_bench)
  for m in $sweeps; do targets+=("$(sweep_binary "$m")"); done
fi

t0=$(date +%s)
if [ -n "${PREBUILT:-}" ]; then
  for f in tests/ssmkit_gpu_tests bench/ssmkit_bench; do
    [ -x "$build/$f" ] || { echo "SUMMARY: PREBUILT set but $build/$f is missing"; exit 1; }
  done
  note "build: prebuilt binaries in $build"
elif ! cmake -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
     -DSSMKIT_BUILD_DOCS=OFF "${prefix[@]}" "${options[@]}" ${SSMKIT_CMAKE_ARGS:-} >"$out/configure.log" 2>&1; then
  tail -30 "$out/configure.log"; echo "SUMMARY: configure failed"; exit 1
elif ! cmake --build "$build" -j"$(nproc)" "${targets[@]}" >"$out/build.log" 2>&1; then
  grep -E "error|Error" "$out/build.log" | head -40; echo "SUMMARY: build failed"; exit 1
else
  note "build: ok in $(( $(date +%s) - t0 )) s (arch $arch)"
fi

# compute-sanitizer over the reduced grid (test cases tagged [sanitize] and the device functions).
# The tools run at once (each is bound by the host's instrumentation work, not by the GPU);
# SANITIZE_TIMEOUT (s, default 420) bounds each of them. start_sanitizers launches them,
# finish_sanitizers waits and notes the results.
san_tools=(${SANITIZE_TOOLS:-memcheck racecheck initcheck synccheck})
san_pids=()
start_sanitizers() {
  if [ -n "${QUICK:-}" ]; then
    note "sanitizer: skipped (QUICK)"
  elif ! command -v compute-sanitizer >/dev/null; then
    note "sanitizer: compute-sanitizer not found"
  else
    for tool in "${san_tools[@]}"; do
      timeout "${SANITIZE_TIMEOUT:-420}" compute-sanitizer --tool "$tool" --error-exitcode 9 \
        "$build/tests/ssmkit_gpu_tests" "${SANITIZE_SPEC:-[sanitize],[device]}" >"$out/sanitize_$tool.log" 2>&1 &
      san_pids+=($!)
    done
  fi
}
finish_sanitizers() {
  for i in "${!san_pids[@]}"; do
    wait "${san_pids[$i]}"
    src=$?
    log="$out/sanitize_${san_tools[$i]}.log"
    errs=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1)
    [ $src -eq 124 ] && errs="timed out after ${SANITIZE_TIMEOUT:-420} s"
    note "sanitizer ${san_tools[$i]}: rc $src, ${errs:-no summary}"
    [ $src -ne 0 ] && grep -E "=========" "$log" | head -20
  done
  san_pids=()
}

# Tests (the CMake consumer tests are CI's; they need no GPU). The GPU test binary runs once,
# below, for its Catch2 totals.
if [ -z "${QUICK:-}" ] && [ -z "${PREBUILT:-}" ]; then
  t1=$(date +%s)
  ctest --test-dir "$build" --output-on-failure -LE cmake -E '^gpu_tests$' >"$out/ctest.log" 2>&1
  rc=$?
  grep -E "tests passed|tests failed|Not Run|\*\*\*|Failed|Skipped" "$out/ctest.log" | tail -15
  note "ctest: $(grep -E 'tests passed' "$out/ctest.log" | tail -1) ($(( $(date +%s) - t1 )) s, rc $rc)"
  skipped=$(grep -c "Skipped" "$out/ctest.log" || true)
  note "ctest skipped lines: $skipped"
fi
# Catch2 totals of the GPU test binary, with the per-case summary line (SKIP_GPU_TESTS=1: the
# caller ran it).
[ -n "${SANITIZE_EARLY:-}" ] && start_sanitizers
if [ -z "${SKIP_GPU_TESTS:-}" ]; then
  t1=$(date +%s)
  "$build/tests/ssmkit_gpu_tests" ${GPU_TESTS:+"$GPU_TESTS"} >"$out/gpu_tests.log" 2>&1
  note "gpu tests${GPU_TESTS:+ ($GPU_TESTS)}: $(tail -3 "$out/gpu_tests.log" | grep -E 'passed|failed' | tr -s ' ') ($(( $(date +%s) - t1 )) s)"
  if grep -q "FAILED" "$out/gpu_tests.log"; then grep -B5 -A25 "FAILED" "$out/gpu_tests.log" | head -120; fi
fi
[ -n "${SANITIZE_EARLY:-}" ] && finish_sanitizers

# Benchmark (before the sanitizers, so that a sanitizer that runs out of time loses nothing).
if [ -z "${SKIP_BENCH:-}" ]; then
  t1=$(date +%s)
  "$build/bench/ssmkit_bench" --json "$out/bench.json" >"$out/bench.txt" 2>&1
  note "bench: rc $?, $(grep -c ' ms \| us ' "$out/bench.txt") rows ($(( $(date +%s) - t1 )) s)"
fi

# Sweeps (SWEEPS), one file.
if [ -n "$sweeps" ]; then
  : >"$out/sweeps.txt"
  for m in $sweeps; do
    cmd=("$build/bench/$(sweep_binary "$m")")
    [ "${cmd[0]##*/}" = ssmkit_sweep ] && cmd+=("$m")
    echo "# ${cmd[*]}" >>"$out/sweeps.txt"
    t1=$(date +%s)
    "${cmd[@]}" >>"$out/sweeps.txt" 2>&1
    note "sweep $m: rc $? ($(( $(date +%s) - t1 )) s)"
  done
fi

# The sanitizers last, unless they ran alongside the GPU tests.
if [ -z "${SANITIZE_EARLY:-}" ]; then
  start_sanitizers
  finish_sanitizers
fi

echo
echo "==================== SUMMARY ===================="
for s in "${summary[@]}"; do echo "$s"; done
[ -f "$out/bench.txt" ] && grep -E "^device|^ceilings| ms | us " "$out/bench.txt"
