#!/usr/bin/env bash
# Nsight Compute summary of one benchmark case: instructions, issue activity, pipe use,
# warp states and shared-memory bank conflicts of the first kernel whose name matches.
#
#   bench/profile.sh <build-dir> "<bench filter>" [kernel-name regex]
set -euo pipefail
build=$1
filter=$2
kernel=${3:-selective_scan_fwd_kernel}
metrics=gpu__time_duration.sum,smsp__inst_executed.sum,smsp__thread_inst_executed.sum
metrics+=,smsp__issue_active.avg.pct_of_peak_sustained_active
metrics+=,smsp__warps_active.avg.per_cycle_active,smsp__warps_eligible.avg.per_cycle_active
metrics+=,sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active
metrics+=,sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active
metrics+=,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum
metrics+=,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread
metrics+=,sm__warps_active.avg.pct_of_peak_sustained_active
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
ncu --kernel-name "regex:$kernel" --launch-skip 2 --launch-count 1 --section WarpStateStats \
    --metrics "$metrics" "$build/bench/ssmkit_bench" --filter "$filter" --reps 1 2>&1 |
  grep -vE "^==PROF==|^\s*$|^ *-+ *$|OPT |Est. Speedup|^\s+(The|This|On average|To reduce|Check|Also|Use|warp|instructions|stall|cycles|the|of|was|is|in|a|to)\b"
