// Bytes each link carried over a step, in equal time bins: the links' utilisation over time (the
// HTML report's top-links chart, the trace's counter tracks). A collective's bytes on a link are
// spread evenly over its lifetime (its start to its last arrival): a bin sees the collective's
// average rate on the link, not the flow-level detail within it.
//
// The step's length is not known while it runs, so the bins start 1 ns wide and double (adjacent
// pairs merged) whenever a collective ends past the last bin: at most `bins` bins of equal width,
// covering [0, bins x width()).
#pragma once

#include <cstddef>
#include <vector>

#include "models/units.h"
#include "topology/link.h"

namespace epsim {

class LinkTimeline {
 public:
  LinkTimeline() = default;
  explicit LinkTimeline(std::size_t links, int bins = 256);
  // `bytes` on `link` at an even rate over [start, end) (all in the bin of `start` when end <= start).
  void add(LinkId link, Time start, Time end, Bytes bytes);

  bool empty() const { return links_ == 0; }
  int bins() const { return bins_; }
  Time width() const { return width_; }
  // Bins up to the last end recorded (the rest are empty).
  int bins_used() const;
  double bytes(LinkId link, int bin) const { return bytes_[index(link, bin)]; }
  // bytes / (bandwidth x width): 1 = the link busy at full rate for the whole bin.
  double utilisation(LinkId link, int bin, Bandwidth bw) const;

 private:
  std::size_t index(LinkId link, int bin) const {
    return static_cast<std::size_t>(link) * static_cast<std::size_t>(bins_) + static_cast<std::size_t>(bin);
  }
  void widen_to(Time end);  // doubles the width until [0, end) fits
  std::size_t links_ = 0;
  int bins_ = 0;
  Time width_ = Time::ps(1000);
  Time last_end_ = Time::zero();
  std::vector<double> bytes_;  // links x bins
};

}  // namespace epsim
