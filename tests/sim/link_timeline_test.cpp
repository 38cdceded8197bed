#include <doctest/doctest.h>

#include "sim/link_timeline.h"

using namespace epsim;

TEST_CASE("a link's bytes spread evenly over a collective's lifetime, bins doubling as the step grows") {
  LinkTimeline t(2, 4);  // 4 bins, starting 1 ns wide
  t.add(0, Time::ns(0), Time::ns(4), Bytes(400));  // 100 B in each 1 ns bin
  CHECK(t.width() == Time::ns(1));
  for (int b = 0; b < 4; ++b) CHECK(t.bytes(0, b) == 100.0);
  CHECK(t.bins_used() == 4);
  // Ending at 10 ns needs 4 bins of 4 ns: the first 400 B merge into bin 0; 600 B over [4, 10) ns
  // fill bin 1 (4-8 ns: 400 B) and half of bin 2 (8-10 ns: 200 B).
  t.add(1, Time::ns(4), Time::ns(10), Bytes(600));
  CHECK(t.width() == Time::ns(4));
  CHECK(t.bytes(0, 0) == 400.0);
  CHECK(t.bytes(0, 1) == 0.0);
  CHECK(t.bytes(1, 1) == 400.0);
  CHECK(t.bytes(1, 2) == 200.0);
  CHECK(t.bins_used() == 3);
  // 400 B in a 4 ns bin on a 100 GB/s link: busy all of it.
  CHECK(t.utilisation(1, 1, Bandwidth::gb_per_s(100)) == doctest::Approx(1.0));
  t.add(1, Time::ns(5), Time::ns(5), Bytes(8));  // instantaneous: all in its bin
  CHECK(t.bytes(1, 1) == 408.0);
}
