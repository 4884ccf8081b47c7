#pragma once
// async_read_some for a TCP socket that knows when a read has emptied the
// socket's receive queue, so that the next read on it waits for epoll's next
// edge instead of first calling recv() and getting EAGAIN (nginx does the
// same with its `ready` flag).
//
// Why: Asio 1.81's epoll reactor tries every read speculatively unless its
// per-socket `try_speculative_` flag is off, and its own receive turns that
// flag off only at end of stream or on an error. A proxy's reads mostly start when nothing
// can have arrived yet (the upstream's answer just after the request went out,
// the client's next request just after the response), so about one read per
// request was a wasted system call (docs/benchmarks.md, issue #19). The
// reactor already has the mechanism, a perform() that answers
// `done_and_exhausted`; this operation answers it when the kernel says the
// queue is empty.
//
// How it knows: with TCP_INQ on (enable_receive_queue_hint; accepted sockets
// inherit it from their listener), every recvmsg() reports how many bytes are
// left in the queue, and reports 1 when a FIN is pending behind the data, so
// the end of stream is read at once (a short read alone would not tell that:
// the FIN's edge may have been consumed already). A socket without TCP_INQ
// reports nothing and keeps Asio's behaviour.
//
// Why it cannot miss data: the socket is registered edge-triggered, and every
// arrival after the read raises a new edge; the reactor sets the flag again
// when it sees that edge (epoll_reactor::descriptor_state::perform_io), so the
// next read is then tried at once. A reset is the one thing TCP_INQ does not
// report: when it came with the last bytes, its edge is the one the read ran
// on, and no other follows. So the operation also looks at the last events
// epoll reported for the socket (the reactor keeps them in its per-socket
// state): after EPOLLHUP or EPOLLERR it never claims the queue is empty, and
// the next read finds the reset at once. Without that, the read would wait
// for its deadline (drained_read_test.cpp, and in the real binary
// test_upstream_failures.py's reset right after the last bytes).
//
// This reaches into Asio's detail namespace (reactor_op, the socket service's
// start_op), which is not a stable interface: it is compiled only for the
// Boost it was written against (1.81, Debian 12's) with the epoll reactor;
// any other build uses the socket's own async_read_some. The same applies to a
// buffer sequence of more than one buffer and to a handler with a cancellation
// slot (nothing here uses either).
// Thread-safety: one thread must run the socket's io_context (a worker's
// does: BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO). The reactor writes the last
// events without the per-socket lock, and this operation reads them.
// Lifetime: as the socket's own async_read_some.

#include <boost/version.hpp>

#include "proxy/io_types.hpp"

#if BOOST_VERSION == 108100 && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && \
    defined(BOOST_ASIO_HAS_EPOLL)
#define FIGSHIFT_DRAINED_READ 1
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#else
#define FIGSHIFT_DRAINED_READ 0
#endif

#include <type_traits>
#include <utility>

namespace figshift::proxy {

#if FIGSHIFT_DRAINED_READ
namespace drained_read_detail {

namespace ad = boost::asio::detail;
using boost::system::error_code;

template <typename Handler>
class RecvOp : public ad::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(RecvOp);

  RecvOp(ad::socket_type socket, ad::epoll_reactor::per_descriptor_data descriptor,
         boost::asio::mutable_buffer buffer, Handler& handler, const Executor& io_ex)
      : ad::reactor_op(error_code(), &RecvOp::do_perform, &RecvOp::do_complete),
        socket_(socket),
        descriptor_(descriptor),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(ad::reactor_op* base) {
    auto* op = static_cast<RecvOp*>(base);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    iovec io{op->buffer_.data(), op->buffer_.size()};
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    ssize_t n;
    do n = ::recvmsg(op->socket_, &message, 0);
    while (n < 0 && errno == EINTR);
    op->bytes_transferred_ = n > 0 ? static_cast<std::size_t>(n) : 0;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;  // wait for the edge
      op->ec_ = error_code(errno, boost::asio::error::get_system_category());
      return done;
    }
    if (n == 0) {
      op->ec_ = boost::asio::error::eof;
      return done_and_exhausted;
    }
    const bool hung_up = op->last_events() & (EPOLLHUP | EPOLLERR);
    return bytes_left(message) == 0 && !hung_up ? done_and_exhausted : done;
  }

  // The events of epoll's last report for this socket, which the reactor
  // keeps in its per-socket state (a scheduler operation's task_result_,
  // protected, reached here as a member of this class's own base; the C-style
  // cast reaches that base through descriptor_state's private inheritance).
  // A state new to this socket may hold anything (0, or a previous socket's
  // events): it does not matter, because registering the socket
  // (EPOLL_CTL_ADD) queues a report if it is already readable, every change
  // after the last collected report queues another, and on the one thread
  // that runs the io_context a collected report's events are stored before
  // any handler can start a read.
  std::uint32_t last_events() const {
    auto* state = (ad::scheduler_operation*)descriptor_;
    return state->*(&RecvOp::task_result_);
  }

  // TCP_INQ's count, or -1 when the socket does not report it.
  static int bytes_left(msghdr& message) {
    for (auto* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level == SOL_TCP && header->cmsg_type == TCP_CM_INQ) {
        int left;
        std::memcpy(&left, CMSG_DATA(header), sizeof left);
        return left;
      }
    }
    return -1;
  }

  static void do_complete(void* owner, ad::operation* base, const error_code&, std::size_t) {
    auto* op = static_cast<RecvOp*>(base);
    ptr p = {std::addressof(op->handler_), op, op};
    ad::handler_work<Handler, Executor> work(std::move(op->work_));
    // The handler is moved out before the operation's memory is given back,
    // so that it may start the next read from the same recycled block.
    ad::binder2<Handler, error_code, std::size_t> call(op->handler_, op->ec_,
                                                       op->bytes_transferred_);
    p.h = std::addressof(call.handler_);
    p.reset();
    if (owner) {
      ad::fenced_block fence(ad::fenced_block::half);
      work.complete(call, call.handler_);
    }
  }

 private:
  ad::socket_type socket_;
  ad::epoll_reactor::per_descriptor_data descriptor_;
  boost::asio::mutable_buffer buffer_;
  Handler handler_;
  ad::handler_work<Handler, Executor> work_;
};

// Access to the socket's implementation and its service's start_op, both
// protected: naming them through a derived class is allowed, and the member
// pointers then apply to any TcpSocket.
static_assert(std::is_base_of_v<ad::scheduler_operation, ad::epoll_reactor::descriptor_state>,
              "last_events() casts the per-socket state to its scheduler_operation base");

struct SocketAccess : TcpSocket {
  static auto& io_object(TcpSocket& socket) { return socket.*(&SocketAccess::impl_); }
};
using SocketService = ad::reactive_socket_service<boost::asio::ip::tcp>;
struct ServiceAccess : SocketService {
  static constexpr auto start = &ServiceAccess::start_op;
};

}  // namespace drained_read_detail
#endif

// Turns TCP_INQ on for `native_socket`: a listener (accepted sockets inherit
// it) or a connected upstream socket. Best effort: without it, reads behave
// as Asio's own.
inline void enable_receive_queue_hint(int native_socket) {
#if FIGSHIFT_DRAINED_READ
  const int on = 1;
  ::setsockopt(native_socket, SOL_TCP, TCP_INQ, &on, sizeof on);
#else
  (void)native_socket;
#endif
}

template <typename MutableBuffers, typename Handler>
void async_read_some_drained(TcpSocket& socket, const MutableBuffers& buffers, Handler&& handler) {
#if FIGSHIFT_DRAINED_READ
  namespace d = drained_read_detail;
  using Op = d::RecvOp<std::decay_t<Handler>>;
  if constexpr (std::is_convertible_v<MutableBuffers, boost::asio::mutable_buffer>) {
    const boost::asio::mutable_buffer buffer(buffers);
    if (buffer.size() != 0 &&
        !boost::asio::get_associated_cancellation_slot(handler).is_connected()) {
      auto& io_object = d::SocketAccess::io_object(socket);
      auto& impl = io_object.get_implementation();
      // The operation takes the handler by moving from this copy, never from
      // a caller's lvalue (Asio's own operations copy those).
      std::decay_t<Handler> own(std::forward<Handler>(handler));
      const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(own);
      typename Op::ptr p = {std::addressof(own), Op::ptr::allocate(own), nullptr};
      p.p = new (p.v) Op(impl.socket_, impl.reactor_data_, buffer, own, socket.get_executor());
      (io_object.get_service().*d::ServiceAccess::start)(
          impl, boost::asio::detail::reactor::read_op, p.p, is_continuation,
          /*is_non_blocking=*/true,
          /*noop=*/false);
      p.v = p.p = nullptr;
      return;
    }
  }
#endif
  socket.async_read_some(buffers, std::forward<Handler>(handler));
}

}  // namespace figshift::proxy
