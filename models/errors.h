// Typed errors thrown by library code; only tools/ catches and prints them.
#pragma once

#include <stdexcept>
#include <string>

namespace epsim {

// A scenario value breaks a rule. `path` is the JSON path ("network.nic_gbps"), `value` the offending
// value as written (JSON text), `rule` what it must satisfy.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string path, std::string value, std::string rule)
      : std::runtime_error(path + " = " + value + ": " + rule),
        path_(std::move(path)), value_(std::move(value)), rule_(std::move(rule)) {}
  const std::string& path() const { return path_; }
  const std::string& value() const { return value_; }
  const std::string& rule() const { return rule_; }

 private:
  std::string path_, value_, rule_;
};

// A file could not be read or parsed.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A quantity left its type's range: an integer Time or Bytes overflowed, or a double (seconds,
// bytes, FLOPs, a rate) that was to become one was not finite or too large. `op` names the
// operation ("Time + Time", "Bytes x integer", "Bytes / Bandwidth -> Time"). Bounded scenario keys
// keep valid scenarios far from these limits; tools print this as bad input (exit status 2) and
// name the scenario keys that drive the overflowing quantity.
class UnitOverflow : public std::overflow_error {
 public:
  UnitOverflow(std::string op, const std::string& detail)
      : std::overflow_error(op + " overflows: " + detail), op_(std::move(op)) {}
  const std::string& op() const { return op_; }

 private:
  std::string op_;
};

// The simulation reached a state its invariants forbid (a bug, not bad input).
class SimulationError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace epsim
