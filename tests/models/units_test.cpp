#include <doctest/doctest.h>

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
