// A seeded stream of random numbers for the gate model: the same seed gives the same numbers on
// every run (the build is one platform; every sampler below is our own code, not a std::
// distribution whose algorithm a library could change).
//
// Seeds are derived, not chained: derive_seed(seed, {step, layer, micro_batch}) mixes every key
// with SplitMix64, so the sample of (step 3, layer 7) does not depend on which samples were drawn
// before it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <random>

namespace epsim {

std::uint64_t derive_seed(std::uint64_t seed, std::initializer_list<std::int64_t> keys);

class RandomStream {
 public:
  explicit RandomStream(std::uint64_t seed) : engine_(seed) {}
  double uniform();                       // in [0, 1), 53 random bits
  std::int64_t index(std::int64_t n);     // uniform in [0, n), n >= 1
  double normal();                        // standard normal (polar method, pairs cached)
  // Binomial(n, p). Exact (inversion) when the variance n p (1-p) is below 16; above it, the
  // normal approximation N(np, np(1-p)) rounded and clamped to [0, n], whose error in any
  // probability is O(1/sqrt(variance)) and whose mean and variance are right to O(1).
  std::int64_t binomial(std::int64_t n, double p);

 private:
  std::mt19937_64 engine_;
  double spare_normal_ = 0.0;
  bool has_spare_ = false;
};

// Binomial(n, p) with its set-up done once, for drawing many times (RandomStream::binomial's
// algorithm: inversion below variance 16, rounded normal above).
class Binomial {
 public:
  Binomial(std::int64_t n, double p);
  std::int64_t operator()(RandomStream& rng) const;

 private:
  enum class Kind { Zero, All, Inversion, Normal };
  Kind kind_ = Kind::Zero;
  bool flip_ = false;  // drawn as n - Binomial(n, 1 - p)
  std::int64_t n_ = 0;
  double mean_ = 0, sd_ = 0, pmf0_ = 0, ratio_ = 0;
};

}  // namespace epsim
