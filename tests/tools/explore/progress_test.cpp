#include <doctest/doctest.h>

#include <cstdio>

#include "tools/explore/progress.h"

using namespace epsim::explore;

TEST_CASE("the progress bar: points done, failures, elapsed time and the ETA from this run's rate") {
  CHECK(Progress::clock(0) == "0:00");
  CHECK(Progress::clock(62.4) == "1:02");
  CHECK(Progress::clock(3723) == "1:02:03");
  // 50 of 200 done, 40 of them in this run in 20 s: 0.5 s a point, 150 left -> 75 s.
  CHECK(Progress::bar(50, 200, 0, 40, 20.0) == "\r[#######.......................] 50/200 points, 0:20 elapsed, ETA 1:15 ");
  CHECK(Progress::bar(200, 200, 3, 200, 100.0) == "\r[##############################] 200/200 points (3 failed), 1:40 elapsed, ETA 0:00 ");
  CHECK(Progress::bar(10, 200, 0, 0, 0.0) == "\r[#.............................] 10/200 points, 0:00 elapsed, ETA --:-- ");
}

TEST_CASE("off a terminal: one plain line per point") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    Progress p(3, 1, false, f);
    p.point_done("abc: step 1 ms", false);
    p.point_done("def: error: x", true);
    p.finish();
  }
  std::rewind(f);
  char buf[256] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  CHECK(std::string(buf, n) == "[2/3] abc: step 1 ms\n[3/3] def: error: x\n");
}
