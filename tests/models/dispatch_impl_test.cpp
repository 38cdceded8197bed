#include <doctest/doctest.h>

#include "models/dispatch_impl.h"

using namespace epsim;

// nccl: 35 us + 3.1 us per piece (fixed), bytes at 286 GB/s with 0.07 of the reverse bytes.
// 10 pieces, 286 MB out, 100 MB in: fixed 66 us; moving (286 + 7) MB / 286 GB/s = 1024.48... us.
TEST_CASE("a round's fixed and moving parts") {
  const DispatchImpl nccl = DispatchImpl::named("nccl");
  const RoundWork r = nccl.round_work(10, Bytes(286000000), Bytes(100000000));
  CHECK(r.fixed == Time::us(66));
  CHECK(r.moving.to_us() == doctest::Approx(293.0 / 286.0 * 1000.0));
  CHECK(r.total() == r.fixed + r.moving);
  // Its own rows: the cost model's device copy (given) when that is longer than the cross bytes.
  CHECK(nccl.round_work(0, Bytes(0), Bytes(0), Bytes(1000), Time::us(7)).moving == Time::us(7));
  // peer: its own rows at the measured 1240 GB/s whatever device copy the cost model would give.
  const DispatchImpl peer = DispatchImpl::named("peer");
  const RoundWork own = peer.round_work(0, Bytes(0), Bytes(0), Bytes(1240000000), Time::us(7));
  CHECK(own.fixed == Time::us(16));
  CHECK(own.moving == Time::ms(1));
  CHECK(DispatchImpl::named("ideal").round_work(5, Bytes(1), Bytes(1)).total() == Time::zero());
}
