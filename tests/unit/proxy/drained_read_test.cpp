// async_read_some_drained over a real loopback TCP connection: after a read
// that empties the receive queue, the next read makes no system call until
// epoll reports new bytes, and neither an end of stream nor a reset that came
// behind the last bytes is left unseen. The system calls are counted by
// interposing recvmsg() in this test executable (the operation calls it
// directly; Asio's own receive of one buffer calls recv()).
#include "proxy/drained_read.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

namespace {
std::atomic<int> counted_socket{-1};
std::atomic<int> reads{0};
std::atomic<int> would_block{0};
}  // namespace

extern "C" ssize_t recvmsg(int socket, struct msghdr* message, int flags) {
  using Real = ssize_t (*)(int, struct msghdr*, int);
  static const auto real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "recvmsg"));
  const ssize_t n = real(socket, message, flags);
  if (socket == counted_socket.load()) {
    const int saved = errno;
    ++reads;
    if (n < 0 && (saved == EAGAIN || saved == EWOULDBLOCK)) ++would_block;
    errno = saved;
  }
  return n;
}

namespace figshift::proxy {
namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;

#if FIGSHIFT_DRAINED_READ

struct ReadResult {
  error_code ec;
  std::string bytes;
};

class DrainedReadTest : public ::testing::Test {
 protected:
  // `hint`: TCP_INQ on the listener, so on the accepted (reading) socket.
  void connect(bool hint) {
    TcpAcceptor acceptor(ioc_.get_executor(), {asio::ip::make_address("127.0.0.1"), 0});
    if (hint) enable_receive_queue_hint(acceptor.native_handle());
    peer_.emplace(ioc_.get_executor());
    peer_->connect(acceptor.local_endpoint());
    reader_.emplace(acceptor.accept());
    counted_socket = reader_->native_handle();
    reads = 0;
    would_block = 0;
  }

  void TearDown() override { counted_socket = -1; }

  void peer_sends(const std::string& bytes) {
    ASSERT_EQ(::send(peer_->native_handle(), bytes.data(), bytes.size(), 0),
              static_cast<ssize_t>(bytes.size()));
    std::this_thread::sleep_for(20ms);  // arrived: loopback delivers within the send
  }

  void start_read() {
    result_.reset();
    async_read_some_drained(*reader_, asio::buffer(buffer_), [this](error_code ec, std::size_t n) {
      result_ = ReadResult{ec, std::string(buffer_, n)};
    });
  }

  // Runs until the pending read completes, or fails after `limit`.
  ReadResult finish_read(std::chrono::milliseconds limit = 5000ms) {
    ioc_.restart();
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!result_ && std::chrono::steady_clock::now() < until) ioc_.run_one_for(50ms);
    EXPECT_TRUE(result_.has_value()) << "the read did not complete";
    return result_.value_or(ReadResult{asio::error::timed_out, {}});
  }

  // The peer has sent `bytes` and ended (FIN or RST). epoll reports both
  // together while no read waits: that report is used up, and no other will
  // come. Then a read takes the bytes, and the next must see the end within a
  // second: its error.
  error_code bytes_then_end(const std::string& bytes) {
    std::this_thread::sleep_for(20ms);
    auto keep_running = asio::make_work_guard(ioc_);
    ioc_.poll();
    start_read();
    EXPECT_EQ(finish_read().bytes, bytes);
    start_read();
    return finish_read(1000ms).ec;
  }

  asio::io_context ioc_{1};
  std::optional<TcpSocket> peer_;
  std::optional<TcpSocket> reader_;
  char buffer_[4096];
  std::optional<ReadResult> result_;
};

TEST_F(DrainedReadTest, ReadThatEmptiesTheQueueLetsTheNextWaitWithoutASystemCall) {
  connect(/*hint=*/true);
  peer_sends("abc");
  start_read();
  EXPECT_EQ(finish_read().bytes, "abc");
  EXPECT_EQ(reads, 1);

  start_read();
  ioc_.restart();
  ioc_.run_for(100ms);  // nothing to read: the read waits for epoll...
  EXPECT_FALSE(result_.has_value());
  EXPECT_EQ(reads, 1) << "the waiting read tried recvmsg first";
  EXPECT_EQ(would_block, 0);

  peer_sends("def");  // ...which reports the new bytes
  EXPECT_EQ(finish_read().bytes, "def");
  EXPECT_EQ(reads, 2);
  EXPECT_EQ(would_block, 0);
}

TEST_F(DrainedReadTest, WithoutTheHintTheReadIsTriedFirstAsAsioDoes) {
  connect(/*hint=*/false);
  peer_sends("abc");
  start_read();
  EXPECT_EQ(finish_read().bytes, "abc");
  start_read();
  ioc_.restart();
  ioc_.run_for(100ms);
  EXPECT_FALSE(result_.has_value());
  EXPECT_EQ(would_block, 1);
  peer_sends("def");
  EXPECT_EQ(finish_read().bytes, "def");
}

TEST_F(DrainedReadTest, EndOfStreamBehindTheLastBytesIsReadAtOnce) {
  connect(/*hint=*/true);
  peer_sends("xyz");
  ASSERT_EQ(::shutdown(peer_->native_handle(), SHUT_WR), 0);
  EXPECT_EQ(bytes_then_end("xyz"), asio::error::eof);
}

TEST_F(DrainedReadTest, ResetBehindTheLastBytesIsSeenAtOnce) {
  connect(/*hint=*/true);
  peer_sends("rst");
  const linger abortive{1, 0};  // close() sends an RST
  ASSERT_EQ(::setsockopt(peer_->native_handle(), SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive),
            0);
  peer_->close();
  EXPECT_EQ(bytes_then_end("rst"), asio::error::connection_reset);
}

#else
TEST(DrainedReadTest, NotBuiltForThisAsio) {
  GTEST_SKIP() << "Asio's own reads are used";
}
#endif

}  // namespace
}  // namespace figshift::proxy
