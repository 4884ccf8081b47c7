#pragma once
// The I/O object types of the data path, bound to the worker's concrete
// io_context executor. Asio's default, the type-erased any_io_executor, is
// copied, compared and destroyed through a vtable in every composed operation;
// the profile showed that as the largest single user-space cost per request.
// Sockets are bare: deadlines are the session's own (see SessionList), not a
// timer per operation as in Beast's tcp_stream.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace figshift::proxy {

using Executor = boost::asio::io_context::executor_type;
using TcpSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
using TcpAcceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, Executor>;
using TcpResolver = boost::asio::ip::basic_resolver<boost::asio::ip::tcp, Executor>;
using Timer = boost::asio::basic_waitable_timer<
    std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>, Executor>;

}  // namespace figshift::proxy
