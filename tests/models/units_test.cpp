#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "models/errors.h"
#include "models/units.h"

using namespace epsim;

TEST_CASE("time is integer picoseconds with named constructors") {
  CHECK(Time::us(1).picoseconds() == 1000000);
  CHECK(Time::ms(2.5).picoseconds() == 2500000000LL);
  CHECK((Time::ns(3) + Time::ps(7)).picoseconds() == 3007);
  CHECK(Time::us(1) < Time::us(2));
}

TEST_CASE("bytes over bandwidth is a time, rounded to the nearest picosecond") {
  CHECK(Bytes(1000000) / Bandwidth::gb_per_s(50) == Time::us(20));
  CHECK((Bytes(1000000) / Bandwidth::gb_per_s(450)).picoseconds() == 2222222);
  CHECK(Bandwidth::gbit_per_s(400).bytes_per_second() == 50e9);
  CHECK(Flops(240e9) / FlopRate::tflops(240) == Time::ms(1));
}

// Overflow: each checked operation throws UnitOverflow naming itself instead of wrapping or casting
// an out-of-range double (the limits are int64's: 2^63 - 1 ps is 106.75 days).
static std::string overflow_op(const std::function<void()>& f) {
  try {
    f();
  } catch (const UnitOverflow& e) {
    return e.op();
  }
  return "(no error)";
}

TEST_CASE("time and byte arithmetic throws UnitOverflow instead of wrapping") {
  const Time big = Time::ps(std::numeric_limits<std::int64_t>::max() - 10);
  CHECK((big + Time::ps(10)).picoseconds() == std::numeric_limits<std::int64_t>::max());
  CHECK(overflow_op([&] { (void)(big + Time::ps(11)); }) == "Time + Time (ps)");
  CHECK(overflow_op([&] { (void)(Time::ps(-big.picoseconds()) - Time::ps(12)); }) == "Time - Time (ps)");
  CHECK(overflow_op([] { (void)(Time::infinity() + Time::ps(1)); }) == "Time + Time (ps)");
  CHECK(overflow_op([] { (void)(Bytes(std::int64_t{1} << 62) * 2); }) == "Bytes x integer");
  CHECK(overflow_op([] { (void)(Bytes(std::int64_t{1} << 62) + Bytes(std::int64_t{1} << 62)); }) == "Bytes + Bytes");
  CHECK((Bytes(std::int64_t{1} << 61) * 3).count() == 3 * (std::int64_t{1} << 61));
}

TEST_CASE("no double becomes an integer quantity out of range") {
  // 1e7 s is 1e19 ps > 9.22e18: out of range; 9e6 s fits.
  CHECK(Time::seconds(9e6).picoseconds() == 9'000'000'000'000'000'000);
  CHECK(overflow_op([] { (void)Time::seconds(1e7); }) == "seconds -> Time");
  CHECK(overflow_op([] { (void)Time::seconds(std::nan("")); }) == "seconds -> Time");
  CHECK(overflow_op([] { (void)Time::us(-1e300); }) == "seconds -> Time");
  // A rate of 1e-300 (the nic_gbps = 1e-300): the transfer time is out of range, not
  // a garbage integer that made the step faster.
  CHECK(overflow_op([] { (void)(Bytes(1000) / Bandwidth::gbit_per_s(1e-300)); }) == "Bytes / Bandwidth -> Time");
  CHECK(overflow_op([] { (void)(Flops(1e9) / FlopRate::tflops(1e-300)); }) == "Flops / FlopRate -> Time");
  CHECK(overflow_op([] { (void)(Bytes(1) / Bandwidth::bytes_per_s(0)); }) == "Bytes / Bandwidth -> Time");
  CHECK(overflow_op([] { (void)Bytes::gb(1e10); }) == "GB -> Bytes");
  CHECK(overflow_op([] { (void)Time::ceil_ps(1e19); }) == "picoseconds (double) -> Time");
  CHECK(Time::ceil_ps(2.1).picoseconds() == 3);
  CHECK(Time::from_ps(2.5).picoseconds() == 3);
  CHECK(Time::from_ps(-2.5).picoseconds() == -3);
  CHECK(checked_int64(-9.2e18, "x") == -9'200'000'000'000'000'000);
  CHECK(overflow_op([] { (void)checked_int64(9.3e18, "a count"); }) == "a count");
}
