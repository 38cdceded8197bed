#include "sim/link_timeline.h"

#include <algorithm>

namespace epsim {

LinkTimeline::LinkTimeline(std::size_t links, int bins)
    : links_(links), bins_(std::max(1, bins)), bytes_(links * static_cast<std::size_t>(std::max(1, bins)), 0.0) {}

void LinkTimeline::widen_to(Time end) {
  while (end.picoseconds() > width_.picoseconds() * bins_) {
    for (std::size_t l = 0; l < links_; ++l)
      for (int b = 0; b < bins_; ++b) {
        const double v = b < bins_ / 2 ? bytes_[index(static_cast<LinkId>(l), 2 * b)] + bytes_[index(static_cast<LinkId>(l), 2 * b + 1)] : 0.0;
        bytes_[index(static_cast<LinkId>(l), b)] = v;
      }
    width_ = width_ + width_;
  }
}

void LinkTimeline::add(LinkId link, Time start, Time end, Bytes bytes) {
  if (links_ == 0 || bytes.count() <= 0) return;
  end = max(end, start);
  widen_to(max(end, start + Time::ps(1)));
  last_end_ = max(last_end_, end);
  const double total = static_cast<double>(bytes.count());
  const std::int64_t w = width_.picoseconds();
  const std::int64_t s = start.picoseconds(), e = end.picoseconds();
  if (e == s) {
    bytes_[index(link, static_cast<int>(s / w))] += total;
    return;
  }
  for (std::int64_t b = s / w; b * w < e; ++b) {
    const std::int64_t overlap = std::min(e, (b + 1) * w) - std::max(s, b * w);
    bytes_[index(link, static_cast<int>(b))] += total * static_cast<double>(overlap) / static_cast<double>(e - s);
  }
}

int LinkTimeline::bins_used() const {
  if (links_ == 0) return 0;
  const std::int64_t w = width_.picoseconds();
  return static_cast<int>(std::min<std::int64_t>(bins_, (last_end_.picoseconds() + w - 1) / w));
}

double LinkTimeline::utilisation(LinkId link, int bin, Bandwidth bw) const {
  return bytes(link, bin) / (bw.bytes_per_second() * width_.to_seconds());
}

}  // namespace epsim
