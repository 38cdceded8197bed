// A sweep over MPI ranks (Open MPI): `mpirun -np N epsim sweep SPEC.json`. Every rank reads the
// spec and enumerates the same points, so only point indices and results cross the network. Rank 0
// runs the sweep engine (sweep.h) with its own threads and serves the work queue to the others
// (MpiCoordinator: dynamic load balancing, a point at a time per worker slot, so points 100x more
// costly than others do not leave ranks idle); ranks > 0 run what it hands them (mpi_worker) and
// send each result back; rank 0 alone writes the files. Only the main thread calls MPI.
//
// Built when CMake finds MPI (option EPSIM_MPI); without it, `epsim sweep` under mpirun refuses to
// start (every rank would run the whole sweep).
#pragma once

#include <memory>
#include <vector>

#include "tools/explore/sweep.h"

namespace epsim::explore {

// True when this process was started by mpirun / mpiexec (Open MPI, PMIx or PMI environment).
bool launched_by_mpi();
// This process's rank and the world size from that environment (0 and 1 when not launched by MPI).
int env_rank();
int env_local_size();  // ranks on this node

// Whether this build has the MPI runner.
bool mpi_available();

#ifdef EPSIM_HAVE_MPI
// MPI_Init_thread (funneled) and MPI_Finalize around a sweep.
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  int max_over_ranks(int value) const;   // MPI_Allreduce(MAX)
  int from_rank0(int value) const;       // MPI_Bcast of rank 0's value
  [[noreturn]] void abort(int status) const;  // MPI_Abort: stops every rank

 private:
  int rank_ = 0, size_ = 1;
};

// Rank 0's side: the remote workers of ranks 1..size-1.
std::unique_ptr<RemoteWorkers> mpi_coordinator(const MpiSession& session);
// Ranks > 0: asks rank 0 for points, runs them on `threads` threads, sends the results back, until
// rank 0 has no more.
void mpi_worker(const std::vector<SweepPoint>& points, int threads, int steps);
#endif

}  // namespace epsim::explore
