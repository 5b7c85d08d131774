/*
 * ssmkit — state-space model kernels for CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
//! @file block/block_scan.cuh
//! @brief Block-wide scan of (a, b) pairs with a prefix callback that carries the state
//! between tiles.
#pragma once

#include <cub/block/block_scan.cuh>

#include "../config.cuh"
#include "../thread/scan_step.cuh"

SSMKIT_NAMESPACE_BEGIN

//! Prefix callback that carries the recurrence state from one tile to the next. The block
//! hands it each tile's aggregate and receives the carry into the tile; call it from every
//! thread of the first warp, as cub::BlockScan does.
struct RunningPrefix {
  ScanPair running;  //!< Composition of every tile seen so far (starts as (1, h0)).

  //! A carry that starts from state @p h0.
  SSMKIT_HOST_DEVICE explicit RunningPrefix(float h0 = 0.f) : running{1.f, h0} {}

  //! Returns the carry into the tile and folds @p tile_aggregate into the running prefix.
  SSMKIT_DEVICE ScanPair operator()(const ScanPair& tile_aggregate) {
    const ScanPair before = running;
    running = compose(running, tile_aggregate);
    return before;
  }
};

//! Block-wide inclusive scan of @p kItems pairs per thread (a blocked arrangement: thread i
//! holds items i*kItems .. i*kItems+kItems-1), built on cub::BlockScan.
//! @tparam kThreads threads in the block
//! @tparam kItems   pairs per thread
template <int kThreads, int kItems>
class BlockPairScan {
  using Impl = cub::BlockScan<ScanPair, kThreads, cub::BLOCK_SCAN_WARP_SCANS>;

 public:
  //! Shared memory the collective needs; the caller may alias it with other storage.
  using TempStorage = typename Impl::TempStorage;

  //! Binds the collective to @p storage.
  SSMKIT_DEVICE explicit BlockPairScan(TempStorage& storage) : impl_(storage) {}

  //! Scans @p items in place. @p prefix is asked for the carry into this tile and given the
  //! tile's aggregate (see RunningPrefix); after the call items[i].b is the state at that step.
  //! @tparam PrefixOp callable ScanPair(ScanPair tile_aggregate)
  template <typename PrefixOp>
  SSMKIT_DEVICE void InclusiveScan(ScanPair (&items)[kItems], PrefixOp& prefix) {
    impl_.InclusiveScan(items, items, ScanPairOp{}, prefix);
  }

 private:
  Impl impl_;
};

SSMKIT_NAMESPACE_END
