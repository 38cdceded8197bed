// epsim: parse the subcommand, run it, and turn every error into one line and exit status 2.
#include <cstdio>
#include <exception>
#include <map>

#include <boost/program_options/errors.hpp>
#include <fmt/format.h>

#include "models/errors.h"
#include "tools/commands.h"

namespace cli = epsim::cli;

std::string cli::usage() {
  return R"(epsim: discrete-event simulator of Mixture-of-Experts steps under large expert parallelism

usage: epsim <command> [options]

commands:
  run [SCENARIO] [--set key.path=value ...] [--out DIR] [--no-trace]
      Simulate one step of SCENARIO (default: scenarios/seed.json). Prints a summary table
      (step time, tokens/s per GPU and per node, per-layer compute / dispatch / combine /
      exposed communication, memory per GPU and whether it fits) and writes DIR/report.json
      and DIR/trace.json (Chrome trace: open in https://ui.perfetto.dev). DIR defaults to out/.
      --set overrides one scenario key (repeatable); the value is JSON or a bare string,
      e.g. --set workload.tokens_per_gpu=8192 --set network.model=analytical
  keys
      Print every scenario key with its type, default, unit and meaning (markdown).
  help, --help, -h
      This text. `epsim <command> --help` prints it too.

exit status: 0 success; 2 bad input (the message names the JSON path, the value and the rule);
1 internal error.
)";
}

int main(int argc, char** argv) {
  cli::Args args(argv + 1, argv + argc);
  const std::string cmd = args.empty() ? "help" : args.front();
  if (!args.empty()) args.erase(args.begin());
  const std::map<std::string, int (*)(const cli::Args&)> commands = {
      {"run", cli::run_command},
      {"keys", cli::keys_command},
  };
  try {
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      fmt::print("{}", cli::usage());
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
  } catch (const epsim::ConfigError& e) {
    fmt::print(stderr, "epsim: error: {}\n", e.what());
  } catch (const epsim::InputError& e) {
    fmt::print(stderr, "epsim: error: {}\n", e.what());
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
