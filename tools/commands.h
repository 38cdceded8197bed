// The epsim subcommands. Each takes the arguments after its name and returns the exit status;
// errors are thrown (ConfigError, InputError, UsageError) and printed by main.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace epsim::cli {

using Args = std::vector<std::string>;

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

int run_command(const Args& args);
int keys_command(const Args& args);
int net_command(const Args& args);
int net_moe_command(const Args& args);  // net --pattern moe
int calibrate_command(const Args& args);
int explain_command(const Args& args);
int compare_command(const Args& args);
int validate_command(const Args& args);
int sweep_command(const Args& args);
int report_command(const Args& args);
int serve_command(const Args& args);
int search_command(const Args& args);

// Prints `error` as one line on stderr (as main does for every command) and returns the exit
// status: 2 for bad input, 1 for an internal error.
int print_error(std::exception_ptr error);

// The whole command reference (every subcommand and option), printed by --help anywhere.
std::string usage();

}  // namespace epsim::cli
