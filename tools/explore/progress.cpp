#include "tools/explore/progress.h"

#include <fmt/format.h>

namespace epsim::explore {

Progress::Progress(std::size_t total, std::size_t skipped, bool tty, std::FILE* out)
    : total_(total), done_(skipped), tty_(tty), out_(out), start_(std::chrono::steady_clock::now()), drawn_(start_) {
  if (tty_) fmt::print(out_, "{}", bar(done_, total_, failed_, ran_, 0.0));
  std::fflush(out_);
}

std::string Progress::clock(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string Progress::bar(std::size_t done, std::size_t total, std::size_t failed, std::size_t ran, double elapsed) {
  constexpr std::size_t width = 30;
  const std::size_t filled = total == 0 ? width : done * width / total;
  // ETA: this run's rate so far (points finished per second, all workers together).
  const std::string eta = ran == 0 ? "--:--" : clock(elapsed / static_cast<double>(ran) * static_cast<double>(total - done));
  return fmt::format("\r[{}{}] {}/{} points{}, {} elapsed, ETA {} ", std::string(filled, '#'), std::string(width - filled, '.'),
                     done, total, failed ? fmt::format(" ({} failed)", failed) : "", clock(elapsed), eta);
}

void Progress::point_done(const std::string& line, bool failed) {
  ++done_;
  ++ran_;
  if (failed) ++failed_;
  const auto now = std::chrono::steady_clock::now();
  if (!tty_) {
    fmt::print(out_, "[{}/{}] {}\n", done_, total_, line);
  } else if (now - drawn_ > std::chrono::milliseconds(200) || done_ == total_) {
    fmt::print(out_, "{}", bar(done_, total_, failed_, ran_, std::chrono::duration<double>(now - start_).count()));
    drawn_ = now;
  }
  std::fflush(out_);
}

void Progress::finish() {
  if (tty_) {
    fmt::print(out_, "{}\n", bar(done_, total_, failed_, ran_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count()));
    std::fflush(out_);
  }
}

}  // namespace epsim::explore
