// A dispatch small enough to write down, shared by the scheme and mode tests: 2 nodes x 2 GPUs, only
// GPU 0 sends: 4 distinct tokens to GPU 1 (its node), 5 to GPU 2 and 3 to GPU 3 (node 1); 6 distinct
// tokens go to node 1 (2 of them to both GPUs 2 and 3); 7 (token, expert) copies go to GPU 2 (two
// tokens pick two experts there).
#pragma once

#include "placement/dispatch_matrix.h"

namespace epsim::test {

inline DispatchMatrix small_dispatch() {
  DispatchMatrix m;
  m.gpus = 4;
  m.gpus_per_node = 2;
  m.copies.assign(16, 0);
  m.unique.assign(16, 0);
  m.node_unique.assign(8, 0);
  m.unique[m.idx(0, 1)] = 4;
  m.unique[m.idx(0, 2)] = 5;
  m.unique[m.idx(0, 3)] = 3;
  m.copies[m.idx(0, 1)] = 4;
  m.copies[m.idx(0, 2)] = 7;
  m.copies[m.idx(0, 3)] = 3;
  m.node_unique[0 * 2 + 0] = 4;  // to its own node (GPU 1)
  m.node_unique[0 * 2 + 1] = 6;  // to node 1
  return m;
}

}  // namespace epsim::test
