#include "sim/serving/pool_instance.h"

#include <algorithm>
#include <cmath>

#include "models/errors.h"

namespace epsim::serving {

PoolInstance::PoolInstance(const PoolSetup& setup, int index, StepPricer& pricer, Simulator& sim,
                           std::vector<RequestState>& reqs, Hooks hooks)
    : setup_(setup), index_(index), pricer_(pricer), sim_(sim), reqs_(reqs), hooks_(std::move(hooks)),
      ranks_(static_cast<std::size_t>(setup.ranks())) {}

std::int64_t PoolInstance::need(int req) const {
  const Request& r = reqs_[static_cast<std::size_t>(req)].req;
  return setup_.role == Role::Prefill ? r.input : r.input + r.output;
}

int PoolInstance::pick(std::int64_t kv_tokens) const {
  int best = -1;
  for (int i = 0; i < static_cast<int>(ranks_.size()); ++i) {
    const Rank& r = ranks_[static_cast<std::size_t>(i)];
    const std::int64_t free = setup_.rank_kv_tokens - r.reserved;
    if (r.held >= setup_.rank_slots || free < kv_tokens) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    const Rank& b = ranks_[static_cast<std::size_t>(best)];
    if (r.held < b.held || (r.held == b.held && free > setup_.rank_kv_tokens - b.reserved)) best = i;
  }
  return best;
}

int PoolInstance::pick_rank(std::int64_t kv_tokens) const { return pick(kv_tokens); }

void PoolInstance::arrive(int req) {
  queue_.push_back(req);
  kick();
}

void PoolInstance::admit() {
  while (!queue_.empty()) {
    const int q = queue_.front();
    const int r = pick(need(q));
    if (r < 0) return;
    queue_.pop_front();
    RequestState& s = reqs_[static_cast<std::size_t>(q)];
    Rank& rank = ranks_[static_cast<std::size_t>(r)];
    s.instance = index_;
    s.rank = r;
    s.prefilled = s.cached;
    rank.held += 1;
    rank.reserved += need(q);
    rank.static_kv += static_cast<double>(s.cached);
    rank.prefill.push_back(q);
    ++held_;
  }
}

void PoolInstance::reserve(int req, int rank_index) {
  RequestState& s = reqs_[static_cast<std::size_t>(req)];
  Rank& rank = ranks_[static_cast<std::size_t>(rank_index)];
  s.decode_instance = index_;
  s.decode_rank = rank_index;
  rank.held += 1;
  rank.reserved += need(req);
  ++held_;
}

void PoolInstance::kv_arrived(int req) {
  arrived_kv_.push_back(req);
  kick();
}

void PoolInstance::release(int req) {
  RequestState& s = reqs_[static_cast<std::size_t>(req)];
  Rank& rank = ranks_[static_cast<std::size_t>(s.rank)];
  rank.static_kv -= static_cast<double>(s.prefilled);
  rank.held -= 1;
  rank.reserved -= need(req);
  --held_;
  kick();
}

void PoolInstance::kick() {
  if (busy_) return;
  if (setup_.role != Role::Decode) admit();
  if (setup_.role != Role::Decode && start_prefill()) return;
  if (setup_.role != Role::Prefill) start_decode();
}

// ---- prefill steps --------------------------------------------------------------------------

bool PoolInstance::start_prefill() {
  chunks_.clear();
  std::int64_t busiest_tokens = 0, total = 0;
  double busiest_pairs = 0, total_pairs = 0;
  for (Rank& rank : ranks_) {
    std::int64_t room = setup_.rank_prefill_tokens, tokens = 0;
    double pairs = 0;
    for (int q : rank.prefill) {
      const RequestState& s = reqs_[static_cast<std::size_t>(q)];
      const std::int64_t left = s.req.input - s.prefilled;
      std::int64_t take = 0;
      if (left <= room) take = left;
      else if (setup_.chunked) take = room;
      else if (tokens == 0) take = left;  // a prompt above the room runs alone
      if (take > 0) {
        chunks_.push_back({q, take});
        const double c = static_cast<double>(take), p = static_cast<double>(s.prefilled);
        pairs += c * (p + (c + 1.0) / 2.0);
        tokens += take;
        room -= std::min(room, take);
      }
      if (take < left || room == 0) break;
    }
    total += tokens;
    total_pairs += pairs;
    if (tokens > busiest_tokens || (tokens == busiest_tokens && pairs > busiest_pairs)) {
      busiest_tokens = tokens;
      busiest_pairs = pairs;
    }
  }
  if (chunks_.empty()) return false;
  const PrefillShape shape{(busiest_tokens + setup_.tp - 1) / setup_.tp, busiest_pairs / static_cast<double>(busiest_tokens)};
  const PrefillShape mean{(total + setup_.gpus - 1) / setup_.gpus, total_pairs / static_cast<double>(total)};
  const Time d = pricer_.prefill(shape, mean);
  busy_ = true;
  ++stats_.prefill_steps;
  stats_.prefill_time += d;
  stats_.prefill_tokens += total;
  stats_.prefill_load += static_cast<double>(total);
  stats_.prefill_load_max += static_cast<double>(busiest_tokens) * static_cast<double>(ranks_.size());
  sim_.after(d, [this] { end_prefill(); });
  return true;
}

void PoolInstance::end_prefill() {
  busy_ = false;
  std::vector<int> done;
  for (const Chunk& c : chunks_) {
    RequestState& s = reqs_[static_cast<std::size_t>(c.req)];
    Rank& rank = ranks_[static_cast<std::size_t>(s.rank)];
    s.prefilled += c.tokens;
    rank.static_kv += static_cast<double>(c.tokens);
    if (s.prefilled < s.req.input) continue;
    // Finished prompts are a prefix of the rank's queue (a step takes them in order).
    if (rank.prefill.empty() || rank.prefill.front() != c.req) throw SimulationError("serving: prefill order broken");
    rank.prefill.pop_front();
    s.first_token = sim_.now();
    done.push_back(c.req);
  }
  chunks_.clear();
  if (hooks_.produced && !done.empty()) hooks_.produced(static_cast<double>(done.size()));
  for (int q : done) {
    RequestState& s = reqs_[static_cast<std::size_t>(q)];
    if (setup_.role == Role::Prefill) {
      hooks_.prefilled(q);
    } else if (s.req.output == 1) {
      Rank& rank = ranks_[static_cast<std::size_t>(s.rank)];
      rank.static_kv -= static_cast<double>(s.prefilled);
      rank.held -= 1;
      rank.reserved -= need(q);
      --held_;
      s.finish = sim_.now();
      hooks_.finished(q);
    } else {
      join_decode(q);
    }
  }
  kick();
}

// ---- decode steps ---------------------------------------------------------------------------

void PoolInstance::join_decode(int req) {
  RequestState& s = reqs_[static_cast<std::size_t>(req)];
  Rank& rank = ranks_[static_cast<std::size_t>(setup_.role == Role::Decode ? s.decode_rank : s.rank)];
  const double e = setup_.tokens_per_decode_step;
  if (setup_.role != Role::Decode) rank.static_kv -= static_cast<double>(s.prefilled);
  s.decode_join = counter_;
  s.decode_base = static_cast<double>(s.req.input) - static_cast<double>(counter_) * e;
  rank.decoding += 1;
  rank.decode_base += s.decode_base;
  // Tokens after the first: output - 1, e per step.
  const auto steps = static_cast<std::int64_t>(std::ceil(static_cast<double>(s.req.output - 1) / e - 1e-9));
  finishing_.push({counter_ + std::max<std::int64_t>(1, steps), req});
}

bool PoolInstance::start_decode() {
  for (int q : arrived_kv_) join_decode(q);
  arrived_kv_.clear();
  const double e = setup_.tokens_per_decode_step;
  std::int64_t total = 0;
  const Rank* busiest = nullptr;
  for (const Rank& r : ranks_) {
    total += r.decoding;
    if (r.decoding == 0) continue;
    if (!busiest || r.decoding > busiest->decoding ||
        (r.decoding == busiest->decoding && r.kv(counter_, e) - r.static_kv > busiest->kv(counter_, e) - busiest->static_kv))
      busiest = &r;
  }
  if (total == 0) return false;
  const double kv = (busiest->kv(counter_, e) - busiest->static_kv) / static_cast<double>(busiest->decoding);
  const DecodeShape shape{(busiest->decoding + setup_.tp - 1) / setup_.tp, std::max(1.0, kv)};
  const Time d = pricer_.decode(shape);
  busy_ = true;
  ++stats_.decode_steps;
  stats_.decode_time += d;
  stats_.decode_tokens += static_cast<double>(total) * e;
  step_tokens_ = static_cast<double>(total) * e;
  stats_.decode_load += static_cast<double>(total);
  stats_.decode_load_max += static_cast<double>(busiest->decoding) * static_cast<double>(ranks_.size());
  sim_.after(d, [this] { end_decode(); });
  return true;
}

void PoolInstance::finish(int req, Rank& rank) {
  RequestState& s = reqs_[static_cast<std::size_t>(req)];
  s.finish = sim_.now();
  rank.decoding -= 1;
  rank.decode_base -= s.decode_base;
  rank.held -= 1;
  rank.reserved -= need(req);
  --held_;
  hooks_.finished(req);
}

void PoolInstance::end_decode() {
  busy_ = false;
  ++counter_;
  if (hooks_.produced) hooks_.produced(step_tokens_);
  bool freed = false;
  while (!finishing_.empty() && finishing_.top().step <= counter_) {
    const int q = finishing_.top().req;
    finishing_.pop();
    const RequestState& s = reqs_[static_cast<std::size_t>(q)];
    finish(q, ranks_[static_cast<std::size_t>(setup_.role == Role::Decode ? s.decode_rank : s.rank)]);
    freed = true;
  }
  if (freed && setup_.role == Role::Decode && hooks_.freed) hooks_.freed();
  kick();
}

double PoolInstance::kv_tokens() const {
  double sum = 0;
  for (const Rank& r : ranks_) sum += r.kv(counter_, setup_.tokens_per_decode_step);
  return sum;
}

double PoolInstance::max_rank_kv_share() const {
  double m = 0;
  for (const Rank& r : ranks_) m = std::max(m, r.kv(counter_, setup_.tokens_per_decode_step));
  return m / static_cast<double>(setup_.rank_kv_tokens);
}

}  // namespace epsim::serving
