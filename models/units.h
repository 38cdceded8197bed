// Physical quantities as types, so that unit slips do not compile.
//
// Time:      integer picoseconds (int64: +-106 days). Exact, totally ordered, deterministic.
// Bytes:     integer bytes (int64).
// Bandwidth: bytes per second (double); Bytes / Bandwidth -> Time, rounded to the nearest ps.
// Flops:     floating-point operations (double; counts reach 1e17 per step).
// FlopRate:  operations per second (double); Flops / FlopRate -> Time.
#pragma once

#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>

namespace epsim {

class Time {
 public:
  constexpr Time() = default;
  static constexpr Time ps(std::int64_t v) { return Time(v); }
  static constexpr Time ns(double v) { return from_seconds(v * 1e-9); }
  static constexpr Time us(double v) { return from_seconds(v * 1e-6); }
  static constexpr Time ms(double v) { return from_seconds(v * 1e-3); }
  static constexpr Time seconds(double v) { return from_seconds(v); }
  static constexpr Time zero() { return Time(0); }
  static constexpr Time infinity() { return Time(std::numeric_limits<std::int64_t>::max()); }

  constexpr std::int64_t picoseconds() const { return ps_; }
  constexpr double to_seconds() const { return static_cast<double>(ps_) * 1e-12; }
  constexpr double to_us() const { return static_cast<double>(ps_) * 1e-6; }
  constexpr double to_ms() const { return static_cast<double>(ps_) * 1e-9; }

  constexpr Time operator+(Time o) const { return Time(ps_ + o.ps_); }
  constexpr Time operator-(Time o) const { return Time(ps_ - o.ps_); }
  constexpr Time& operator+=(Time o) { ps_ += o.ps_; return *this; }
  constexpr Time& operator-=(Time o) { ps_ -= o.ps_; return *this; }
  constexpr Time operator*(double f) const { return from_seconds(to_seconds() * f); }
  constexpr double operator/(Time o) const { return static_cast<double>(ps_) / static_cast<double>(o.ps_); }
  constexpr auto operator<=>(const Time&) const = default;

 private:
  constexpr explicit Time(std::int64_t v) : ps_(v) {}
  static constexpr Time from_seconds(double s) {
    const double p = s * 1e12;
    return Time(static_cast<std::int64_t>(p < 0 ? p - 0.5 : p + 0.5));
  }
  std::int64_t ps_ = 0;
};

constexpr Time max(Time a, Time b) { return a < b ? b : a; }
constexpr Time min(Time a, Time b) { return a < b ? a : b; }

class Bytes {
 public:
  constexpr Bytes() = default;
  constexpr explicit Bytes(std::int64_t v) : n_(v) {}
  static constexpr Bytes gib(double v) { return Bytes(static_cast<std::int64_t>(v * 1073741824.0)); }
  static constexpr Bytes gb(double v) { return Bytes(static_cast<std::int64_t>(v * 1e9)); }
  constexpr std::int64_t count() const { return n_; }
  constexpr double to_gb() const { return static_cast<double>(n_) * 1e-9; }
  constexpr double to_mb() const { return static_cast<double>(n_) * 1e-6; }
  constexpr Bytes operator+(Bytes o) const { return Bytes(n_ + o.n_); }
  constexpr Bytes operator-(Bytes o) const { return Bytes(n_ - o.n_); }
  constexpr Bytes& operator+=(Bytes o) { n_ += o.n_; return *this; }
  constexpr Bytes operator*(std::int64_t f) const { return Bytes(n_ * f); }
  constexpr auto operator<=>(const Bytes&) const = default;

 private:
  std::int64_t n_ = 0;
};

class Bandwidth {
 public:
  constexpr Bandwidth() = default;
  static constexpr Bandwidth bytes_per_s(double v) { return Bandwidth(v); }
  static constexpr Bandwidth gb_per_s(double v) { return Bandwidth(v * 1e9); }
  static constexpr Bandwidth gbit_per_s(double v) { return Bandwidth(v * 1e9 / 8.0); }
  constexpr double bytes_per_second() const { return bps_; }
  constexpr double to_gb_per_s() const { return bps_ * 1e-9; }
  constexpr Bandwidth operator*(double f) const { return Bandwidth(bps_ * f); }
  constexpr auto operator<=>(const Bandwidth&) const = default;

 private:
  constexpr explicit Bandwidth(double v) : bps_(v) {}
  double bps_ = 0.0;
};

class Flops {
 public:
  constexpr Flops() = default;
  constexpr explicit Flops(double v) : n_(v) {}
  constexpr double count() const { return n_; }
  constexpr Flops operator+(Flops o) const { return Flops(n_ + o.n_); }
  constexpr Flops& operator+=(Flops o) { n_ += o.n_; return *this; }
  constexpr Flops operator*(double f) const { return Flops(n_ * f); }
  constexpr auto operator<=>(const Flops&) const = default;

 private:
  double n_ = 0.0;
};

class FlopRate {
 public:
  constexpr FlopRate() = default;
  static constexpr FlopRate per_s(double v) { return FlopRate(v); }
  static constexpr FlopRate tflops(double v) { return FlopRate(v * 1e12); }
  constexpr double per_second() const { return r_; }
  constexpr double to_tflops() const { return r_ * 1e-12; }
  constexpr FlopRate operator*(double f) const { return FlopRate(r_ * f); }
  constexpr auto operator<=>(const FlopRate&) const = default;

 private:
  constexpr explicit FlopRate(double v) : r_(v) {}
  double r_ = 0.0;
};

constexpr Time operator/(Bytes b, Bandwidth bw) {
  return Time::seconds(static_cast<double>(b.count()) / bw.bytes_per_second());
}
constexpr Time operator/(Flops f, FlopRate r) { return Time::seconds(f.count() / r.per_second()); }
constexpr Bandwidth operator/(Bytes b, Time t) {
  return Bandwidth::bytes_per_s(static_cast<double>(b.count()) / t.to_seconds());
}

}  // namespace epsim
