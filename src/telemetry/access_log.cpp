// The access log: formatting on the worker (no lock, no allocation per line
// once the buffer has grown), writing on one background thread, in batches.
// spdlog's async logger was measured at +16 µs per request here (a queue lock
// and a heap message per line), which is why lines are batched per worker.
#include "figshift/telemetry/access_log.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "figshift/routing.hpp"  // decode_utf8

namespace figshift {
namespace {

constexpr std::size_t max_queued_bytes = 64 * 1024 * 1024;

void append_number(std::string& out, std::uint64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, end);
}

// JSON string escaping for the fields that carry client bytes. Well-formed
// UTF-8 is written as sent (a user "Zoë" reads back as "Zoë", not as the two
// Latin-1 characters of its bytes); control characters, C1 included, are
// \u escapes of their code points; a byte that is not UTF-8 becomes U+FFFD,
// one per ill-formed sequence as in decode_utf8, so every line is valid UTF-8
// and valid JSON whatever the client sent.
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto escape = [&out](unsigned code) {
    out += "\\u00";
    out += hex[code >> 4];
    out += hex[code & 15];
  };
  out += '"';
  while (!text.empty()) {
    const auto c = static_cast<unsigned char>(text.front());
    if (c < 0x80) {
      if (c == '"' || c == '\\') out += '\\';
      if (c < 0x20 || c == 0x7f)
        escape(c);
      else
        out += static_cast<char>(c);
      text.remove_prefix(1);
      continue;
    }
    const Utf8Sequence sequence = decode_utf8(text);
    if (!sequence.valid)
      out += "\\ufffd";
    else if (sequence.code_point < 0xa0)
      escape(static_cast<unsigned>(sequence.code_point));  // C1 controls
    else
      out.append(text.data(), sequence.length);
    text.remove_prefix(sequence.length);
  }
  out += '"';
}

void append_three_digits(std::string& out, unsigned value) {
  out += static_cast<char>('0' + value / 100 % 10);
  out += static_cast<char>('0' + value / 10 % 10);
  out += static_cast<char>('0' + value % 10);
}

void append_optional_string(std::string& out, std::string_view text) {
  if (text.empty())
    out += "null";
  else
    append_json_string(out, text);
}

}  // namespace

struct AccessLog::State {
  std::string path;
  int fd = -1;
  bool owns_fd = false;
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::string> queue;
  std::size_t queued_bytes = 0;
  std::uint64_t dropped_bytes = 0;
  bool stopping = false;
  std::thread writer;
};

AccessLog::AccessLog(const std::string& path) : state_(std::make_unique<State>()) {
  state_->path = path == "-" ? "standard output" : path;
  if (path == "-") {
    state_->fd = STDOUT_FILENO;
  } else {
    state_->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (state_->fd < 0)
      throw std::runtime_error("access_log.path " + path + ": " + std::strerror(errno));
    state_->owns_fd = true;
  }
  state_->writer = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->ready.notify_one();
  state_->writer.join();
  if (state_->owns_fd) ::close(state_->fd);
}

void AccessLog::submit(std::string batch) {
  if (batch.empty()) return;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->queued_bytes + batch.size() > max_queued_bytes) {
      state_->dropped_bytes += batch.size();
      return;
    }
    state_->queued_bytes += batch.size();
    state_->queue.push_back(std::move(batch));
  }
  state_->ready.notify_one();
}

std::uint64_t AccessLog::dropped_bytes() const {
  std::lock_guard lock(state_->mutex);
  return state_->dropped_bytes;
}

void AccessLog::run() {
  std::unique_lock lock(state_->mutex);
  bool failing = false;  // warn once per run of failed writes, not per batch
  for (;;) {
    state_->ready.wait(lock, [&] { return state_->stopping || !state_->queue.empty(); });
    if (state_->queue.empty()) return;  // stopping, and everything is written
    std::string batch = std::move(state_->queue.front());
    state_->queue.pop_front();
    state_->queued_bytes -= batch.size();
    lock.unlock();
    std::size_t done = 0;
    int error = 0;
    while (done < batch.size()) {
      const ssize_t n = ::write(state_->fd, batch.data() + done, batch.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // nowhere to write (closed stdout, full disk): drop the rest
        error = n < 0 ? errno : EIO;
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    if (error && !failing)
      spdlog::warn(
          "access log: cannot write to {}: {}; dropping lines until it works again "
          "(counted in figshift_access_log_dropped_bytes_total)",
          state_->path, std::strerror(error));
    if (!error && failing) spdlog::info("access log: writing to {} again", state_->path);
    failing = error != 0;
    lock.lock();
    state_->dropped_bytes += batch.size() - done;
  }
}

AccessLogBuffer::AccessLogBuffer(AccessLog& log, std::size_t flush_bytes)
    : log_(log), flush_bytes_(flush_bytes) {
  buffer_.reserve(flush_bytes_ + 1024);
}

void AccessLogBuffer::flush() {
  if (buffer_.empty()) return;
  std::string batch;
  batch.reserve(flush_bytes_ + 1024);
  batch.swap(buffer_);
  log_.submit(std::move(batch));
}

void AccessLogBuffer::write(const AccessRecord& r) {
  using namespace std::chrono;
  const auto now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const std::int64_t second = now / 1000;
  if (second != cached_second_) {  // strftime once a second, not once a request
    const std::time_t t = second;
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(cached_time_, sizeof cached_time_, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_second_ = second;
  }
  const auto millis = static_cast<unsigned>(now % 1000);
  std::string& out = buffer_;
  out += R"({"time":")";
  out += cached_time_;
  out += '.';
  append_three_digits(out, millis);
  out += R"(Z","conn":)";
  append_number(out, r.connection);
  out += R"(,"client":)";
  append_json_string(out, r.client);
  out += R"(,"method":)";
  append_json_string(out, r.method);
  out += R"(,"path":)";
  append_json_string(out, r.target);
  out += R"(,"status":)";
  append_number(out, r.status);
  out += R"(,"upstream":)";
  append_optional_string(out, r.upstream);
  out += R"(,"group":)";
  append_optional_string(out, r.group);
  out += R"(,"bucket":)";
  if (r.bucket >= 0)
    append_number(out, static_cast<std::uint64_t>(r.bucket));
  else
    out += "null";
  out += R"(,"latency_ms":)";
  const auto micros = static_cast<std::uint64_t>(r.latency_ms * 1000.0 + 0.5);
  append_number(out, micros / 1000);
  out += '.';
  append_three_digits(out, static_cast<unsigned>(micros % 1000));
  out += R"(,"bytes":)";
  append_number(out, r.bytes);
  if (!r.username.empty()) {
    out += R"(,"user":)";
    append_json_string(out, r.username);
  }
  out += "}\n";
  if (out.size() >= flush_bytes_) flush();
}

}  // namespace figshift
