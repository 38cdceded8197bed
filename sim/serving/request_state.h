// What the serving simulation knows of one request as it moves through the pools.
#pragma once

#include <cstdint>

#include "models/units.h"
#include "sim/serving/request.h"

namespace epsim::serving {

struct RequestState {
  Request req;
  std::int64_t cached = 0;     // prompt tokens from the prefix cache (never computed)
  std::int64_t prefilled = 0;  // prompt tokens whose KV exists (cached ones included)
  int instance = -1, rank = -1;                // colocated or prefill: where it was admitted
  int decode_instance = -1, decode_rank = -1;  // disaggregated: where it decodes
  std::int64_t decode_join = 0;  // the decoding instance's step counter when it joined the batch
  double decode_base = 0;        // its KV tokens at joining - decode_join x tokens per step
  Time first_token = Time::infinity();    // the end of the step that finished its prefill
  Time finish = Time::infinity();         // the end of the step that produced its last token
  Time transfer_start = Time::infinity(), transfer_end = Time::infinity();  // disaggregated KV move
  bool done() const { return finish != Time::infinity(); }
};

}  // namespace epsim::serving
