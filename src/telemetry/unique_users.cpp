// HyperLogLog estimation and the per-minute window of docs/design.md (#17).

#include "figshift/telemetry/unique_users.hpp"

#include <algorithm>
#include <cmath>

namespace figshift {

void HyperLogLog::merge(const HyperLogLog& other) {
  if (other.registers_.empty()) return;
  if (registers_.empty()) {
    registers_ = other.registers_;
    return;
  }
  for (std::size_t i = 0; i < registers; ++i)
    registers_[i] = std::max(registers_[i], other.registers_[i]);
}

double HyperLogLog::estimate() const {
  if (registers_.empty()) return 0;
  constexpr double m = static_cast<double>(registers);
  const double alpha = 0.7213 / (1 + 1.079 / m);
  double sum = 0;
  std::size_t zeros = 0;
  for (std::uint8_t r : registers_) {
    sum += std::ldexp(1.0, -static_cast<int>(r));
    if (r == 0) ++zeros;
  }
  const double raw = alpha * m * m / sum;
  // Small counts: linear counting on the empty registers is far more accurate.
  if (raw <= 2.5 * m && zeros != 0) return m * std::log(m / static_cast<double>(zeros));
  return raw;
}

void UniqueUsersWindow::merge(const UniqueUsersWindow& other) {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& theirs = other.slots_[i];
    Slot& mine = slots_[i];
    if (theirs.minute < 0 || theirs.minute < mine.minute) continue;
    if (theirs.minute > mine.minute) {
      mine = theirs;
    } else {
      mine.sketch.merge(theirs.sketch);
    }
  }
}

double UniqueUsersWindow::estimate(std::int64_t now_ms) const {
  const std::int64_t now_minute = now_ms / 60'000;
  HyperLogLog all;
  for (const Slot& slot : slots_)
    if (slot.minute >= 0 && slot.minute <= now_minute && slot.minute > now_minute - minutes)
      all.merge(slot.sketch);
  return all.estimate();
}

}  // namespace figshift
