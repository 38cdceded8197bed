// epsim sweep SPEC.json [--out DIR] [-j N]: the points of a sweep on a thread pool, or over MPI ranks
// under mpirun (tools/explore/). Resumable: a rerun skips the points results.jsonl already holds.
#include <optional>

#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/config.h"
#include "tools/commands.h"
#include "tools/explore/mpi_sweep.h"
#include "tools/explore/sweep.h"
#include "tools/explore/thread_pool.h"
#include "tools/spec_command_args.h"
#include "tools/version.h"

namespace epsim::cli {

namespace {

explore::SweepOptions options(const SpecCommandArgs& a, int default_threads) {
  explore::SweepOptions o;
  o.out = a.out;
  o.threads = a.jobs > 0 ? a.jobs : default_threads;
  o.tty = ::isatty(STDERR_FILENO) == 1;
  o.version = version();
  return o;
}

int report(const explore::SweepSummary& s, const std::string& out, int threads, int ranks) {
  fmt::print("epsim sweep: {} points: {} run now, {} already in {}/results.jsonl; {} failed; {:.2f} s wall on {} thread{}{}\n",
             s.points, s.ran, s.skipped, out, s.failed, s.wall_s, threads, threads == 1 ? "" : "s",
             ranks > 1 ? fmt::format(" x {} MPI ranks", ranks) : "");
  fmt::print("  wrote {}/results.jsonl (a line per point) and {}/summary.csv\n", out, out);
  if (s.failed == 0) return 0;
  // A point whose scenario was rejected while it ran (or any, with skip_invalid) is in the results
  // with its message; the sweep still exits 2 unless the spec asked to skip them.
  fmt::print(stderr, "epsim: error: {} sweep point{} failed; first: {}\n", s.failed, s.failed == 1 ? "" : "s", s.first_error);
  return 2;
}

int run_local(const SpecCommandArgs& a) {
  const explore::SweepSpec spec = explore::SweepSpec::from_json(read_json_file(a.spec));
  const explore::SweepOptions o = options(a, explore::hardware_threads());
  explore::SweepRun run(spec, o);
  const explore::SweepSummary s = run.run();
  const int status = report(s, o.out, o.threads, 1);
  return spec.skip_invalid ? 0 : status;
}

#ifdef EPSIM_HAVE_MPI
// Every rank reads the spec; rank 0 also opens the results and checks the points. They agree on
// whether to start (so that one rank's bad input stops all, each printing nothing twice), then rank
// 0 serves the queue and writes the files while the others run points.
int run_mpi(const SpecCommandArgs& a) {
  explore::MpiSession mpi;
  // Under mpirun the cores of a node are shared by its ranks.
  const int threads = std::max(1, explore::hardware_threads() / std::max(1, explore::env_local_size()));
  const explore::SweepOptions o = options(a, threads);
  std::optional<explore::SweepSpec> spec;
  std::unique_ptr<explore::SweepRun> run;
  std::exception_ptr error;
  try {
    spec = explore::SweepSpec::from_json(read_json_file(a.spec));
    if (mpi.rank() == 0) run = std::make_unique<explore::SweepRun>(*spec, o);
  } catch (...) {
    error = std::current_exception();
  }
  // One message: rank 0's, or else that of the rank that failed alone.
  const int failed_here = error ? 1 : 0;
  const int failed_at_0 = mpi.from_rank0(failed_here);
  if (mpi.max_over_ranks(failed_here) != 0) {
    if (!error) return 2;
    if (mpi.rank() == 0 || !failed_at_0) {
      return print_error(error);
    }
    return 2;
  }
  try {
    if (mpi.rank() != 0) {
      explore::mpi_worker(spec->points(), o.threads, spec->steps);
      return 0;
    }
    const auto remote = explore::mpi_coordinator(mpi);
    const explore::SweepSummary s = run->run(remote.get());
    std::vector<std::size_t> per_rank = remote->results_per_worker();
    per_rank[0] = s.ran;
    for (std::size_t r = 1; r < per_rank.size(); ++r) per_rank[0] -= per_rank[r];
    const int status = report(s, o.out, o.threads, mpi.size());
    fmt::print("  points run per rank: {}\n", fmt::join(per_rank, ", "));
    return spec->skip_invalid ? 0 : status;
  } catch (...) {
    // The others wait for this rank: stop them all.
    mpi.abort(print_error(std::current_exception()));
  }
}
#endif

}  // namespace

int sweep_command(const Args& args) {
  const SpecCommandArgs a = parse_spec_command(args, "sweep");
  if (a.jobs < 0 || a.jobs > 1024) throw UsageError("-j " + std::to_string(a.jobs) + ": must be in [0, 1024] (0: all cores)");
  if (!explore::launched_by_mpi()) return run_local(a);
#ifdef EPSIM_HAVE_MPI
  return run_mpi(a);
#else
  if (explore::env_rank() != 0) return 2;
  throw UsageError("this epsim was built without MPI, so under mpirun every rank would run the whole sweep: "
                   "install libopenmpi-dev and rebuild (CMake finds it), or run without mpirun");
#endif
}

}  // namespace epsim::cli
