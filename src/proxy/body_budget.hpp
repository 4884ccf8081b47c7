#pragma once
// How many bytes of request bodies one worker may hold in memory at once
// (limits.buffered_body_bytes, shared out per worker). A body is reserved in
// full before it is read: a Content-Length body for its length, a chunked one
// for limits.body_bytes (the most it may grow to). What does not fit is
// answered 503 without reading it, so N slow uploads cannot add up to more
// memory than the operator allowed.
// Thread-safety: none; one worker's only (plain integers, no atomics).
// Lifetime: the budget outlives every Lease taken from it (the Worker owns
// the budget and destroys its sessions and exchanges first).

#include <cstdint>
#include <utility>

namespace figshift::proxy {

class BodyBudget {
 public:
  explicit BodyBudget(std::uint64_t limit_bytes) : limit_(limit_bytes) {}

  // Bytes held while a Lease lives; given back when it is reset or destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease(Lease&& other) noexcept
        : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        reset();
        budget_ = std::exchange(other.budget_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
      }
      return *this;
    }
    ~Lease() { reset(); }

    void reset() {
      if (budget_) budget_->in_use_ -= bytes_;
      budget_ = nullptr;
      bytes_ = 0;
    }
    std::uint64_t bytes() const { return bytes_; }

   private:
    friend class BodyBudget;
    Lease(BodyBudget* budget, std::uint64_t bytes) : budget_(budget), bytes_(bytes) {}
    BodyBudget* budget_ = nullptr;
    std::uint64_t bytes_ = 0;
  };

  // A lease of `bytes`, or an empty one (bytes() == 0, counted as a rejection)
  // when they do not fit. Zero bytes always fit.
  bool try_take(std::uint64_t bytes, Lease& lease) {
    lease.reset();
    if (bytes == 0) return true;
    if (bytes > limit_ - in_use_ || in_use_ > limit_) {
      ++rejections_;
      return false;
    }
    in_use_ += bytes;
    lease = Lease(this, bytes);
    return true;
  }

  std::uint64_t limit() const { return limit_; }
  std::uint64_t in_use() const { return in_use_; }
  std::uint64_t rejections() const { return rejections_; }

 private:
  std::uint64_t limit_;
  std::uint64_t in_use_ = 0;
  std::uint64_t rejections_ = 0;
};

}  // namespace figshift::proxy
