#include <doctest/doctest.h>

#include <string>

#include "models/errors.h"
#include "sim/simulator.h"

using namespace epsim;

TEST_CASE("events run in time order, ties in scheduling order") {
  Simulator sim;
  std::string log;
  sim.at(Time::us(2), [&] { log += "c"; });
  sim.at(Time::us(1), [&] { log += "a"; });
  sim.at(Time::us(1), [&] {
    log += "b";
    sim.after(Time::us(1), [&] { log += "d"; });  // also at 2 us, after "c"
  });
  CHECK(sim.run() == 4);
  CHECK(log == "abcd");
  CHECK(sim.now() == Time::us(2));
}

TEST_CASE("scheduling in the past is an error") {
  Simulator sim;
  sim.at(Time::us(5), [&] { CHECK_THROWS_AS(sim.at(Time::us(1), [] {}), SimulationError); });
  sim.run();
}
