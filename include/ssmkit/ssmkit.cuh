/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file ssmkit.cuh
//! @brief Umbrella header: everything ssmkit offers.
#pragma once

#include "block/block_scan.cuh"
#include "block/conv1d_tile.cuh"
#include "causal_conv1d.cuh"
#include "causal_conv1d_params.cuh"
#include "config.cuh"
#include "dispatch.cuh"
#include "launch.cuh"
#include "math.cuh"
#include "reference/causal_conv1d.cuh"
#include "reference/selective_scan.cuh"
#include "reference/selective_state_update.cuh"
#include "selective_scan.cuh"
#include "selective_scan_params.cuh"
#include "selective_state_update.cuh"
#include "selective_state_update_params.cuh"
#include "status.cuh"
#include "thread/scan_step.cuh"
#include "types.cuh"
#include "warp/warp_scan.cuh"
