// Progress of a sweep: on a terminal, one bar redrawn in place (points done of all, failed, elapsed
// time and ETA); elsewhere (a log, a pipe, CI) one plain line per finished point.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace epsim::explore {

class Progress {
 public:
  // `total` points, `skipped` of them finished by an earlier run; `tty`: draw the bar on `out`.
  Progress(std::size_t total, std::size_t skipped, bool tty, std::FILE* out);
  // One more point finished; `line` describes it (printed as is when not on a terminal).
  void point_done(const std::string& line, bool failed);
  void finish();  // ends the bar's line
  // "1:02:03" or "2:03".
  static std::string clock(double seconds);
  // The bar line for `done` of `total` points after `elapsed` s of this run, `ran` points run in it.
  static std::string bar(std::size_t done, std::size_t total, std::size_t failed, std::size_t ran, double elapsed);

 private:
  std::size_t total_, done_, ran_ = 0, failed_ = 0;
  bool tty_;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_, drawn_;
};

}  // namespace epsim::explore
