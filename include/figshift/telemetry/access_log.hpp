#pragma once
// The access log: one JSON line per request, formatted on the worker and
// written by one background thread. Thread-safety: AccessLog::submit may be
// called from any thread; an AccessLogBuffer belongs to one worker thread.
// Lifetime: an AccessLog must outlive every AccessLogBuffer writing to it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace figshift {

// One request, as the access log sees it. The views need only live until
// AccessLogBuffer::write returns.
struct AccessRecord {
  std::uint64_t connection = 0;
  std::string_view client;
  std::string_view method;
  std::string_view target;
  unsigned status = 0;
  std::string_view upstream;  // empty: answered by the proxy itself
  std::string_view group;     // "legacy", "new" or empty
  int bucket = -1;            // -1: anonymous
  double latency_ms = 0;
  std::uint64_t bytes = 0;    // response body bytes
  std::string_view username;  // only when access_log.include_username
};

// One JSON line per request. Workers format lines into their own buffer
// (AccessLogBuffer, no lock) and hand over whole batches; one writer thread
// writes them, so a slow disk or pipe never blocks a worker. If the writer
// falls more than `max_queued_bytes` behind, or a write fails (full disk,
// closed pipe), lines are dropped, counted, and a warning is logged.
// Never carries the Authorization header or the password.
// Thread-safety: submit() may be called from any thread.
class AccessLog {
 public:
  explicit AccessLog(const std::string& path);  // "-": stdout; throws on an unopenable file
  ~AccessLog();                                 // writes what is queued, then stops
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void submit(std::string batch);
  std::uint64_t dropped_bytes() const;

 private:
  void run();
  struct State;
  std::unique_ptr<State> state_;
};

// A worker's private line buffer. Thread-safety: one thread only.
class AccessLogBuffer {
 public:
  AccessLogBuffer(AccessLog& log, std::size_t flush_bytes = 64 * 1024);
  ~AccessLogBuffer() { flush(); }
  void write(const AccessRecord& record);
  void flush();

 private:
  AccessLog& log_;
  std::size_t flush_bytes_;
  std::string buffer_;
  std::int64_t cached_second_ = -1;
  char cached_time_[32] = {};  // "2026-11-22T02:42:42" for cached_second_
};

}  // namespace figshift
