// epsim: parse the subcommand, run it, and turn every error into one line and exit status 2.
#include <cstdio>
#include <exception>
#include <map>

#include <boost/program_options/errors.hpp>
#include <fmt/format.h>

#include "models/errors.h"
#include "tools/commands.h"
#include "tools/version.h"

namespace cli = epsim::cli;

std::string cli::usage() {
  return R"(epsim: discrete-event simulator of Mixture-of-Experts steps under large expert parallelism

usage: epsim <command> [options]
       epsim --version     the version it was built from (git describe at build time; "unknown"
                           when built outside a git checkout); report.json records it too

commands:
  run [SCENARIO] [--set key.path=value ...] [--out DIR] [--no-trace] [--steps N (1..10000, default 1)] [--ops]
      [--trace-gpus LIST] [--trace-layers LIST]
      Simulate one step of SCENARIO (default: scenarios/seed.json). Prints a summary table
      (step time, tokens/s per GPU and per node, per-layer compute / dispatch / combine /
      exposed communication, memory per GPU and whether it fits) and writes DIR/report.json
      and DIR/trace.json (Chrome trace: open in https://ui.perfetto.dev; whole nanoseconds, slice
      args with FLOPs, bytes and tokens, counter tracks for the busiest links; --trace-gpus 0-7 and
      --trace-layers 3,10-12 keep only those GPUs and layers, the LM head being layer
      model.layers). DIR defaults to out/; it is created and checked writable after the scenario is read
      and before the simulation starts.
      --set overrides one scenario key (repeatable); the value is JSON or a bare string,
      e.g. --set workload.tokens_per_gpu=8192 --set network.model=analytical
      --steps N simulates N steps; after each the gate observes the expert loads (routing.balance=
      bias moves its per-expert bias) and a line per step shows the step time, max/mean routed
      tokens per expert and dropped tokens. The summary and files describe the last step.
      With more than one step it also prints the step-time distribution (p50, p99 nearest rank)
      and how much of the tail the barriers' waits for their slowest GPU explain, and which GPUs
      they waited for (report.json steps); noisy kernels come from faults.kernel_jitter.
      --ops lists one dense and one MoE layer's ops (forward; backward too in training) on one
      GPU: time, share of the layer, GFLOP, MB, precision and what priced each (report.json has
      them as `ops` always).
  compare [SCENARIO...] [--placements a,b,c] [--faults F] [--steps N (1..10000, default 1)] [--format F] [--set key.path=value ...] [--out DIR]
      Simulate SCENARIO once per placement strategy (contiguous, round_robin, random, colocated,
      topology_aware, eplb, file; default: contiguous,round_robin,topology_aware,eplb) on the same
      routing samples (step i uses routing.seed + i, for every strategy). Prints step time,
      tokens/s per GPU, the most tokens one link carried in a dispatch and that link, max/mean
      routed load per GPU, exposed communication, the expected link load without simulation and
      expert memory per GPU; writes DIR/compare.json, DIR/compare.svg (bar charts of step time and
      max link tokens), DIR/placement-<strategy>.json and DIR/load-stats.json (the gate's expected
      expert loads) in the layout --format F names: eplb (phy2log, log2phy, logcnt; default),
      sglang (physical_to_logical_map per model layer; logical_count), vllm (EplbState:
      physical_to_logical_map, logical_to_physical_map, logical_replica_count; expert_load_pass) or
      vllm-ascend (layer_list of device_expert lists); placement.file and load_stats read them all.
      Several scenarios: each with its own placement (--placements scenario) unless --placements
      is given. --faults F (a faults section as inline JSON, a file, or a scenario whose faults
      section is taken): each row runs healthy, degraded by F, and for eplb re-planned around the
      failed GPUs (faults.replan_placement); a state the scenario refuses (lost experts) prints why;
      with --faults or --steps > 1 a second table gives p99 step time, cluster tokens/s, GPUs
      holding tokens and the share of selections lost.
  calibrate RESULTS.json... [-o PROFILE.json] [--holdout FRACTION | --holdout-shapes SPEC...]
            [--smoothing S] [--check-layer LAYER.json...] [-v]
      Fit a calibrated cost profile from epsim-bench result files (kernels/results/*.json): per
      kernel family with FLOPs an efficiency curve (baseline / measured time, piecewise linear in
      log2 size, Eigen least squares); for copies, permutes, P2P and NCCL ln(time) as a cubic
      spline in log2 size (latency + size / rate segments), plus one latency + bandwidth line. Prints
      each family's error on held-out shapes (median and max, %) and writes the profile with its
      provenance. --holdout FRACTION (default 0.25): every round(1/FRACTION)-th interior size of
      each series is held out (deterministic); --holdout-shapes KERNEL:key=value[,key=value]
      holds out those shapes instead. --smoothing S (default 0.02, >= 0): weight of the fit's second-
      difference penalty. -v lists every held-out point and the spline segments. --check-layer: price
      every op of whole layers measured by kernels/epsim_layer.py (epsim-layer/1) with the fitted
      profile and print each layer's error (sum of predicted ops vs the layer measured as one; -v:
      per op). Without -o nothing is written. Every row needs us_median > 0, flops and bytes >= 0, and
      flops > 0 in a family priced by FLOPs; a bad row stops with file:results[i].key = value: rule.
      Scenarios use a profile with "cost_model": {"calibration": "PROFILE.json"}, a shipped
      "h100-measured" / "h200-measured", or "measured" (the GPU preset's own).
  explain [SCENARIO] --op OP [--tokens N] [--experts E] [--seq N] [--kv N] [--set key=value ...]
      Show how one op's time is obtained under SCENARIO's cost model: FLOPs, bytes, the curve
      and the measured neighbours (calibrated) or the roofline terms (nominal). OP: attention_proj,
      attention_core, gate, dense_mlp, expert_mlp, shared_expert, lm_head. Sizes default to the
      scenario's workload (expert_mlp: tokens x top_k over parallelism.experts_per_gpu experts);
      given, each must be >= 1.
  explain [SCENARIO] --family F --x SIZE [--series key=value,...] --set cost_model.calibration=P
      One curve of the calibration profile (any family, e.g. nccl_alltoall --x 16777216): its
      shape, its segments (the one holding SIZE marked), the value at SIZE and the measured points.
  net [--nodes N] [--gpus-per-node G] [--pattern P] [--bytes B | -b MIN [-e MAX] [-f FACTOR | -i STEP]]
      [--calibration PROFILE] [--seed S] [--pattern-file F] [--csv FILE]
      One traffic pattern through the network alone, the simulator's nccl-tests. Defaults: 32 nodes
      x 8 GPUs (at most 65536; 4096 for the all-to-all patterns), alltoall, B = 1000000 bytes per flow (at most 2^40; a size sweep
      at most 4096 sizes), seed 1. P: alltoall, alltoall-jitter (sizes B +-50%, --jitter J), incast
      (--senders K to GPU 0; default every other GPU), permutation, zipf (skewed destinations,
      --zipf-s S in [0, 16]), file (--pattern-file F: lines "src dst bytes", three decimal integers,
      src != dst, '#' comments; a bad line stops with F:line:column). --csv is checked writable
      before the run. Fabric: --nic-gbps
      (400), --nvlink-gbs (450), --oversubscription (1), --nodes-per-leaf (32); --model flow
      (default) | analytical; --completion-window W (flow: 1e-3, 0 exact; as network.
      completion_window); --vs-exact also runs it exact and prints each flow's most early and
      most late end against it, relative to its duration (exit 4 beyond W). Prints completion
      time, algbw and busbw (nccl-tests definitions),
      the number of flows and the wall time; --csv writes every flow's completion time. Sizes take
      nccl-tests' suffixes (16M = 16 x 1024^2). -b/-e/-f (or -i) sweep sizes as nccl-tests does: a
      size is one rank's buffer (an all-to-all sends size / n to each of the n ranks, its own
      included), one row per size: size, count, type, time, algbw, busbw. --calibration (a profile
      name or path) applies what it measured of NCCL's all-to-all: its rate on NVLink and its fixed
      cost per collective.
  net --pattern moe --mode normal|low_latency --ep N --tokens T --hidden H --topk K [--experts E]
      [--fp8] [--groups G --topk-groups M] [--comm-sms S] [--gpus-per-node G] [--nic-gbps B]
      [--model flow|analytical] [--calibration P] [--csv FILE]
      One MoE dispatch and combine (uniform gate, contiguous experts) in a DeepEP mode (network.
      dispatch_impl), each alone: per rank the bytes of the tokens it sends (dispatch) or receives
      (combine) over RDMA and NVLink, over its time (mean and max over ranks); the engines' constants
      used; --csv writes every rank.
  validate MEASURED.json... [--phases] [--json OUT] [--set key.path=value ...]
      Hold the simulator to measured expert-parallel MoE layers (kernels/results/ep*.json, written by
      kernels/ep_layer.cu): each case becomes a scenario (its GPUs as one node of H200s, cost model
      h200-measured with per-expert GEMMs, its model shape, tokens, overlap, chunks, layers,
      network.dispatch_impl = its dispatch, its measured routing through the gate's trace mode) and
      is simulated. Prints per case the measured and predicted total time and error, and each
      phase's error (gate, permute, count exchange, dispatch, experts, combine, unpermute); per file
      the median and max total-time error against the target (median <= 5%, every case <= 10%).
      --phases also prints each phase's measured and predicted us; --json writes everything;
      --set overrides a key of every case's scenario (e.g. --set schedule.comm_sms=40). A case needs
      total_us > 0 and phases_us >= 0; --json is checked writable before the first case runs.
      Whole-layer files (schema epsim-layer/1, kernels/epsim_layer.py: one decoder layer on one GPU)
      are recognised by their schema: each case's ops as the simulator's layer program has them,
      priced by the device's GPU preset and measured profile, against the measured ops by name,
      and the sum of the predicted ops against the layer measured as one (--phases: every op).
  sweep SPEC.json [--out DIR] [-j N]
      Run every point of a sweep: a base scenario plus axes over any scenario keys (grid values or
      ranges, zipped lists, seeded random samples; the format: scenarios/README.md, `epsim keys
      --sweep`). Points run on N threads (default: all cores); each finished point is appended at once
      to DIR/results.jsonl (its id, axes, resolved scenario, headline figures, wall time, version)
      and DIR/summary.csv tabulates them at the end (DIR defaults to out/<SPEC's name>). Rerunning
      the same command skips the points already there (after a kill too). A progress bar with ETA
      on a terminal, else a line per point. Under `mpirun -np R` (an MPI build) rank 0 serves the
      points one at a time to every rank's threads and writes the files (-j defaults to the cores
      per rank). Exit status 2 when a point's scenario is rejected (unless "skip_invalid": true).
  report DIR|RESULTS.jsonl [-o report.html]
      One self-contained HTML page (inline SVG and script, fetches nothing) of what DIR holds:
      results.jsonl (a sweep: any metric against one or two axes, lines or a heatmap, chosen in
      the page), compare.json (compare: the strategies side by side) or report.json (a run: the
      per-layer time breakdown, GPU x layer heatmaps of compute and exposed communication, the
      busiest links' utilisation over the step, the placement map with each GPU's routed load,
      memory per GPU; the per-GPU charts read detail.json, which run writes beside report.json).
      Output defaults to report.html in DIR.
  serve SCENARIO [--set key.path=value ...] [--out DIR] [-j N]
      Serve requests on the deployment SCENARIO describes, with its serving section (keys:
      scenarios/README.md): Poisson arrivals or a CSV trace, continuous batching (prefill first,
      chunked prompts, max sequences and prompt tokens per GPU), one colocated pool or prefill and
      decode pools whose KV caches move over the fabric. Each step's time comes from the step
      simulator on the pool's scenario at that batch shape (a grid of shapes interpolated, the error
      measured against exact runs on a sample; N threads price them, default all cores). Prints
      TTFT, TPOT and end-to-end latency (mean, p50, p90, p99, max), throughput per GPU and per node,
      goodput under serving.ttft_ms / tpot_ms, Little's law, each pool's steps, balance and KV
      cache; writes DIR/serve.json, DIR/requests.csv (a row per request), DIR/kv.csv (KV over time).
  search SPEC.json [--out DIR] [-j N]
      Search deployments for a traffic and latency targets on a budget of nodes (format:
      scenarios/README.md, `epsim keys --search`): instance size (EP), attention TP, overlap,
      dispatch, placement, colocated or prefill:decode pools, batch limits, prompt tokens per step,
      load. Pool configurations are characterised and the deployments served on the analytical
      network with layers extrapolated; the best are served again exactly on the flow network.
      Prints the confirmed deployments with the Pareto fronts (output tokens/s per GPU against TPOT
      and against TTFT at the percentile, within the targets) and the chosen one; writes
      DIR/search.json, DIR/front.svg and DIR/front-N.json per front point (`epsim serve` on it gives
      its figures, `epsim run` its decode step). DIR defaults to out/<SPEC's name>.
  keys [--sweep | --search]
      Print every scenario key (--sweep: every sweep specification key; --search: every search
      specification key) with its type, default, unit and meaning (markdown).
  help, --help, -h
      This text. `epsim <command> --help` prints it too.

exit status: 0 success; 2 bad input (the message names the JSON path, the value and the rule);
1 internal error.
)";
}

int cli::print_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const epsim::ConfigError& e) {
    fmt::print(stderr, "epsim: error: {}\n", e.what());
  } catch (const epsim::InputError& e) {
    fmt::print(stderr, "epsim: error: {}\n", e.what());
  } catch (const epsim::UnitOverflow& e) {
    // Commands that read a scenario turn this into a ConfigError naming its keys (tools/overflow_keys.h).
    fmt::print(stderr, "epsim: error: the inputs leave the simulator's 64-bit range: {}\n", e.what());
  } catch (const cli::UsageError& e) {
    fmt::print(stderr, "epsim: error: {}\n", e.what());
  } catch (const boost::program_options::error& e) {
    fmt::print(stderr, "epsim: error: {} (try: epsim --help)\n", e.what());
  } catch (const std::exception& e) {
    fmt::print(stderr, "epsim: internal error: {}\n", e.what());
    return 1;
  }
  return 2;
}

int main(int argc, char** argv) {
  cli::Args args(argv + 1, argv + argc);
  const std::string cmd = args.empty() ? "help" : args.front();
  if (!args.empty()) args.erase(args.begin());
  const std::map<std::string, int (*)(const cli::Args&)> commands = {
      {"run", cli::run_command},
      {"net", cli::net_command},
      {"keys", cli::keys_command},
      {"calibrate", cli::calibrate_command},
      {"explain", cli::explain_command},
      {"compare", cli::compare_command},
      {"validate", cli::validate_command},
      {"sweep", cli::sweep_command},
      {"report", cli::report_command},
      {"serve", cli::serve_command},
      {"search", cli::search_command},
  };
  try {
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      fmt::print("{}", cli::usage());
      return 0;
    }
    if (cmd == "--version" || cmd == "version") {
      fmt::print("epsim {}\n", cli::version());
      return 0;
    }
    auto it = commands.find(cmd);
    if (it == commands.end()) throw cli::UsageError("unknown command '" + cmd + "' (try: epsim --help)");
    for (const auto& a : args)
      if (a == "--help" || a == "-h") {
        fmt::print("{}", cli::usage());
        return 0;
      }
    return it->second(args);
  } catch (...) {
    return cli::print_error(std::current_exception());
  }
}
