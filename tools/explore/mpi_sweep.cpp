#include "tools/explore/mpi_sweep.h"

#include <cstdlib>
#include <string>

#ifdef EPSIM_HAVE_MPI
#include <mpi.h>

#include "models/errors.h"
#include "tools/explore/point_runner.h"
#endif

namespace epsim::explore {

namespace {
int env_int(const char* a, const char* b, const char* c, int fallback) {
  for (const char* name : {a, b, c})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return fallback;
}
}  // namespace

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_SIZE");
}
int env_rank() { return env_int("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", 0); }
int env_local_size() { return env_int("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE", 1); }

#ifndef EPSIM_HAVE_MPI
bool mpi_available() { return false; }
#else
bool mpi_available() { return true; }

namespace {

// Messages. Worker -> rank 0: kHello (int: its worker slots), kResult (JSON text: {"index",
// "result"}). Rank 0 -> worker: kPoint (long long: a point index, or -1: stop), one per slot at
// hello and one per result.
constexpr int kHello = 1, kResult = 2, kPoint = 3;

void send_point(long long index, int rank) { MPI_Send(&index, 1, MPI_LONG_LONG, rank, kPoint, MPI_COMM_WORLD); }

class MpiCoordinator : public RemoteWorkers {
 public:
  explicit MpiCoordinator(int ranks)
      : slots_(static_cast<std::size_t>(ranks), -1), stopped_(static_cast<std::size_t>(ranks), 0), results_(static_cast<std::size_t>(ranks), 0) {
    slots_[0] = 0;  // rank 0 is this process
  }

  void serve(std::deque<std::size_t>& queue, const Done& done) override {
    int waiting = 0;
    MPI_Status st;
    while (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &waiting, &st) == MPI_SUCCESS && waiting) {
      const int from = st.MPI_SOURCE;
      if (st.MPI_TAG == kHello) {
        int slots = 0;
        MPI_Recv(&slots, 1, MPI_INT, from, kHello, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        slots_[static_cast<std::size_t>(from)] = slots;
        for (int s = 0; s < slots; ++s) answer(from, queue);
      } else if (st.MPI_TAG == kResult) {
        int n = 0;
        MPI_Get_count(&st, MPI_CHAR, &n);
        std::string text(static_cast<std::size_t>(n), '\0');
        MPI_Recv(text.data(), n, MPI_CHAR, from, kResult, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        const nlohmann::json j = nlohmann::json::parse(text);
        answer(from, queue);  // the worker's next point first, then the write (fsync)
        done(j.at("index").get<std::size_t>(), PointResult::from_json(j.at("result")));
        ++results_[static_cast<std::size_t>(from)];
      } else {
        throw SimulationError("mpi sweep: unexpected message tag " + std::to_string(st.MPI_TAG) + " from rank " + std::to_string(from));
      }
    }
  }

  bool finished() const override {
    for (std::size_t r = 1; r < slots_.size(); ++r)
      if (slots_[r] < 0 || stopped_[r] < slots_[r]) return false;
    return true;
  }

  std::vector<std::size_t> results_per_worker() const override { return results_; }

 private:
  void answer(int rank, std::deque<std::size_t>& queue) {
    if (queue.empty()) {
      ++stopped_[static_cast<std::size_t>(rank)];
      send_point(-1, rank);
      return;
    }
    send_point(static_cast<long long>(queue.front()), rank);
    queue.pop_front();
  }
  std::vector<int> slots_;    // per rank: worker slots (-1: not heard from yet)
  std::vector<int> stopped_;  // per rank: slots told to stop
  std::vector<std::size_t> results_;  // per rank: points it finished
};

}  // namespace

MpiSession::MpiSession() {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() { MPI_Finalize(); }

int MpiSession::max_over_ranks(int value) const {
  int out = value;
  MPI_Allreduce(&value, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

int MpiSession::from_rank0(int value) const {
  MPI_Bcast(&value, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return value;
}

void MpiSession::abort(int status) const {
  MPI_Abort(MPI_COMM_WORLD, status);
  std::abort();  // not reached
}

std::unique_ptr<RemoteWorkers> mpi_coordinator(const MpiSession& session) {
  return std::make_unique<MpiCoordinator>(session.size());
}

void mpi_worker(const std::vector<SweepPoint>& points, int threads, int steps) {
  PointWorkers workers(threads, [&](std::size_t i) { return run_point(points[i].doc, steps); });
  int slots = threads > 0 ? threads : hardware_threads();
  MPI_Send(&slots, 1, MPI_INT, 0, kHello, MPI_COMM_WORLD);
  int awaiting = slots;  // replies rank 0 owes us: one per slot at hello, one per result
  while (awaiting > 0 || workers.in_flight() > 0) {
    int waiting = 0;
    while (awaiting > 0 && MPI_Iprobe(0, kPoint, MPI_COMM_WORLD, &waiting, MPI_STATUS_IGNORE) == MPI_SUCCESS && waiting) {
      long long index = -1;
      MPI_Recv(&index, 1, MPI_LONG_LONG, 0, kPoint, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      --awaiting;
      if (index >= 0) workers.start(static_cast<std::size_t>(index));
    }
    if (auto d = workers.next_done(std::chrono::milliseconds(1))) {
      const std::string text = nlohmann::json{{"index", d->index}, {"result", d->result.to_json()}}.dump();
      MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, 0, kResult, MPI_COMM_WORLD);
      ++awaiting;
    }
  }
}
#endif

}  // namespace epsim::explore
