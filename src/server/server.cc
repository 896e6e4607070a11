#include "server/server.h"

#include <unistd.h>

#include <boost/asio.hpp>
#include <condition_variable>
#include <csignal>
#include <thread>
#include <vector>

#include "server/connection.h"
#include "server/cursor_registry.h"
#include "server/delayed_task.h"
#include "server/memcache/memcache_store.h"
#include "server/metrics.h"
#include "server/protocol.h"
#include "util/clock.h"
#include "util/logging.h"
#include "varve/db.h"

namespace varve::server {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol;

HandlerFactory FactoryFor(Protocol p) {
  switch (p) {
    case Protocol::kRedis:
      return NewRedisHandler;
    case Protocol::kMemcached:
      return NewMemcachedHandler;
    case Protocol::kHttp:
      return NewHttpHandler;
  }
  return nullptr;
}

class ServerImpl final : public Server {
 public:
  explicit ServerImpl(const ServerOptions& options)
      : options_(options), signals_(io_, SIGTERM, SIGINT) {
    // One event loop per I/O thread: a connection lives on one loop, so its steps never hop
    // threads (no strand, no futex hand-offs between requests). Listeners live on io_.
    unsigned n = options_.threads != 0 ? options_.threads
                                       : std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) loops_.push_back(std::make_unique<asio::io_context>(1));
  }

  ~ServerImpl() override {
    Stop();
    Wait().ok();
  }

  Status Init() {
    RegisterRedisCommands(&metrics_);
    RegisterMemcachedCommands(&metrics_);
    RegisterHttpCommands(&metrics_);
    Result<std::unique_ptr<DB>> db = DB::Open(options_.engine, options_.data_dir);
    if (!db.ok()) return db.status();
    db_ = std::move(db).value();
    ctx_.db = db_.get();
    ctx_.options = &options_;
    ctx_.metrics = &metrics_;
    ctx_.cursors = &cursors_;
    ctx_.delayed_flush = &delayed_flush_;
    ctx_.start_unix_ms = NowUnixMs();

    struct Listener {
      Protocol protocol;
      uint16_t port;
      std::string socket;
    };
    for (const Listener& l :
         {Listener{Protocol::kRedis, options_.redis_port, options_.redis_socket},
          Listener{Protocol::kMemcached, options_.memcached_port, options_.memcached_socket},
          Listener{Protocol::kHttp, options_.http_port, options_.http_socket}}) {
      if (l.port != 0) VARVE_RETURN_IF_ERROR(ListenTcp(l.protocol, l.port));
      if (!l.socket.empty()) VARVE_RETURN_IF_ERROR(ListenUnix(l.protocol, l.socket));
    }
    if (tcp_acceptors_.empty() && unix_acceptors_.empty()) {
      return Status::InvalidArgument("no listener: every port is 0 and no socket is set");
    }
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      LogInfo(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", stopping");
      Stop();
    });
    for (auto& loop : loops_) {
      guards_.push_back(asio::make_work_guard(*loop));
      threads_.emplace_back([l = loop.get()] { l->run(); });
    }
    threads_.emplace_back([this] { io_.run(); });
    return Status::Ok();
  }

  Status Wait() override {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_requested_; });
      if (stopped_) return close_status_;
      stopped_ = true;
    }
    // Stop accepting, let connections finish what they are doing, then close the store.
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      for (auto& a : tcp_acceptors_) a->close(ignored);
      for (auto& a : unix_acceptors_) a->close(ignored);
      signals_.cancel(ignored);
    });
    tracker_.ShutdownAll();
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.shutdown_timeout_ms);
    while (tracker_.size() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    io_.stop();
    for (auto& loop : loops_) loop->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    for (const std::string& path : socket_paths_) ::unlink(path.c_str());
    cursors_.Clear();
    delayed_flush_.Stop();
    Status s = db_ != nullptr ? db_->Close() : Status::Ok();
    LogInfo(s.ok() ? "stopped; store closed"
                   : "stopped; closing the store failed: " + s.ToString());
    std::lock_guard lock(mu_);
    close_status_ = s;
    return s;
  }

  void Stop() override {
    std::lock_guard lock(mu_);
    stop_requested_ = true;
    cv_.notify_all();
  }

 private:
  Status ListenTcp(Protocol p, uint16_t port) {
    boost::system::error_code ec;
    asio::ip::address address = asio::ip::make_address(options_.bind, ec);
    if (ec) return Status::InvalidArgument("--bind " + options_.bind + ": " + ec.message());
    tcp::endpoint endpoint(address, port);
    auto acceptor = std::make_unique<tcp::acceptor>(io_);
    std::string where =
        std::string(ProtocolName(p)) + " on " + options_.bind + ":" + std::to_string(port);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::IOError("cannot listen for " + where + ": " + ec.message());
    LogInfo(std::string(ProtocolName(p)) + " listening on " + options_.bind + ":" +
            std::to_string(acceptor->local_endpoint().port()));
    tcp_acceptors_.push_back(std::move(acceptor));
    AcceptTcp(*tcp_acceptors_.back(), p);
    return Status::Ok();
  }

  Status ListenUnix(Protocol p, const std::string& path) {
    boost::system::error_code ec;
    // A socket file left by a previous run that nobody listens on any more can go.
    {
      unix_socket::socket probe(io_);
      probe.connect(unix_socket::endpoint(path), ec);
      if (!ec) return Status::Busy(path + ": another process is listening on this socket");
      ::unlink(path.c_str());
    }
    auto acceptor = std::make_unique<unix_socket::acceptor>(io_);
    unix_socket::endpoint endpoint(path);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::IOError("cannot listen for " + std::string(ProtocolName(p)) + " on " + path +
                             ": " + ec.message());
    }
    socket_paths_.push_back(path);
    LogInfo(std::string(ProtocolName(p)) + " listening on unix:" + path);
    unix_acceptors_.push_back(std::move(acceptor));
    AcceptUnix(*unix_acceptors_.back(), p);
    return Status::Ok();
  }

  asio::io_context& NextLoop() { return *loops_[next_loop_++ % loops_.size()]; }

  bool Admit(Protocol p) {
    if (tracker_.size() < options_.max_connections) return true;
    metrics_.CountRejectedConnection(p);
    return false;
  }

  void AcceptTcp(tcp::acceptor& acceptor, Protocol p) {
    acceptor.async_accept(
        NextLoop(), [this, &acceptor, p](boost::system::error_code ec, tcp::socket s) {
          if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
          if (!ec && Admit(p)) {
            s.set_option(tcp::no_delay(true), ec);
            std::string peer;
            auto remote = s.remote_endpoint(ec);
            if (!ec) peer = remote.address().to_string() + ":" + std::to_string(remote.port());
            auto c = std::make_shared<Connection<tcp::socket>>(std::move(s), p, FactoryFor(p),
                                                               &ctx_, &tracker_, peer);
            tracker_.Add(c);
            c->Start();
          }
          AcceptTcp(acceptor, p);
        });
  }

  void AcceptUnix(unix_socket::acceptor& acceptor, Protocol p) {
    acceptor.async_accept(
        NextLoop(), [this, &acceptor, p](boost::system::error_code ec, unix_socket::socket s) {
          if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
          if (!ec && Admit(p)) {
            auto c = std::make_shared<Connection<unix_socket::socket>>(
                std::move(s), p, FactoryFor(p), &ctx_, &tracker_, "unix");
            tracker_.Add(c);
            c->Start();
          }
          AcceptUnix(acceptor, p);
        });
  }

  ServerOptions options_;
  // Declared before io_ so that they outlive it: a pending accept on io_ holds a socket that
  // belongs to one of these loops.
  std::vector<std::unique_ptr<asio::io_context>> loops_;
  asio::io_context io_;
  size_t next_loop_ = 0;  // touched only by accept handlers, which run on io_'s one thread
  asio::signal_set signals_;
  std::vector<std::unique_ptr<tcp::acceptor>> tcp_acceptors_;
  std::vector<std::unique_ptr<unix_socket::acceptor>> unix_acceptors_;
  std::vector<std::string> socket_paths_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::unique_ptr<DB> db_;
  Metrics metrics_;
  CursorRegistry cursors_;
  DelayedTask delayed_flush_{[this] {
    Status s = memcache::ItemStore(db_.get(), options_.max_value_bytes).FlushAll();
    if (!s.ok()) LogWarning("delayed flush_all failed: " + s.ToString());
  }};
  ServerContext ctx_;
  ConnectionTracker tracker_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;
  bool stopped_ = false;
  Status close_status_;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto server = std::make_unique<ServerImpl>(options);
  Status s = server->Init();
  if (!s.ok()) {
    server->Stop();
    return s;
  }
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace varve::server
