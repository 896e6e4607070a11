// One client connection, for any protocol and any stream socket (TCP or Unix): reads whatever
// arrives, hands it to the protocol's ProtocolHandler, writes back what it produced. All of a
// connection's work runs on its event loop (one thread), one step at a time.
#pragma once

#include <boost/asio.hpp>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/protocol.h"

namespace varve::server {

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  // Stops reading; closes once the reply being written (if any) is out. Thread-safe.
  virtual void Shutdown() = 0;
};

// The live connections, for max_connections and for a graceful stop.
class ConnectionTracker {
 public:
  size_t Add(const std::shared_ptr<ConnectionBase>& c) {
    std::lock_guard lock(mu_);
    live_[c.get()] = c;
    return live_.size();
  }
  void Remove(ConnectionBase* c) {
    std::lock_guard lock(mu_);
    live_.erase(c);
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return live_.size();
  }
  void ShutdownAll() {
    std::vector<std::shared_ptr<ConnectionBase>> all;
    {
      std::lock_guard lock(mu_);
      for (auto& [p, w] : live_) {
        if (auto c = w.lock()) all.push_back(std::move(c));
      }
    }
    for (auto& c : all) c->Shutdown();
  }

 private:
  std::mutex mu_;
  std::unordered_map<ConnectionBase*, std::weak_ptr<ConnectionBase>> live_;
};

using HandlerFactory = std::unique_ptr<ProtocolHandler> (*)(ServerContext*, ClientInfo*);

template <class Socket>
class Connection final : public ConnectionBase,
                         public std::enable_shared_from_this<Connection<Socket>> {
 public:
  Connection(Socket socket, Protocol protocol, HandlerFactory factory, ServerContext* ctx,
             ConnectionTracker* tracker, std::string peer)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        protocol_(protocol),
        ctx_(ctx),
        tracker_(tracker) {
    client_.id = ctx->next_client_id.fetch_add(1);
    client_.peer = std::move(peer);
    handler_ = factory(ctx, &client_);
  }

  void Start() {
    ctx_->metrics->ConnectionOpened(protocol_);
    boost::asio::dispatch(socket_.get_executor(),
                          [self = this->shared_from_this()] { self->DoRead(); });
  }

  void Shutdown() override {
    boost::asio::post(socket_.get_executor(), [self = this->shared_from_this()] {
      self->close_after_write_ = true;
      self->close_reason_ = Disconnect::kShutdown;
      if (!self->writing_) self->Close(Disconnect::kShutdown);
    });
  }

 private:
  static constexpr size_t kReadChunk = 64 * 1024;

  void DoRead() {
    if (closed_) return;
    if (in_.size() < in_len_ + kReadChunk) in_.resize(in_len_ + kReadChunk);
    socket_.async_read_some(boost::asio::buffer(in_.data() + in_len_, in_.size() - in_len_),
                            [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                              size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const boost::system::error_code& ec, size_t n) {
    if (closed_) return;
    if (ec) {
      Close(ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset
                ? Disconnect::kClient
                : Disconnect::kIoError);
      return;
    }
    in_len_ += n;
    ctx_->metrics->CountBytes(protocol_, n, 0);
    ProcessInput();
  }

  void ProcessInput() {
    bool close = false;
    Disconnect why = Disconnect::kClient;
    std::string_view pending(in_.data() + in_start_, in_len_ - in_start_);
    size_t consumed = handler_->Process(pending, &out_, &close, &why);
    in_start_ += consumed;
    if (in_start_ == in_len_) {
      in_start_ = in_len_ = 0;
      if (in_.size() > 4 * kReadChunk) std::string(kReadChunk, '\0').swap(in_);
    } else if (in_start_ > 0) {
      std::memmove(in_.data(), in_.data() + in_start_, in_len_ - in_start_);
      in_len_ -= in_start_;
      in_start_ = 0;
    }
    if (close) {
      close_after_write_ = true;
      close_reason_ = why;
    } else if (in_len_ > ctx_->options->max_request_bytes + kReadChunk) {
      // The front end should have refused this request already; never buffer without bound.
      ctx_->metrics->CountMalformed(protocol_);
      close_after_write_ = true;
      close_reason_ = Disconnect::kTooLarge;
    }
    UpdateTimer(std::string_view(in_.data(), in_len_));
    if (!out_.empty()) {
      DoWrite();
    } else if (close_after_write_) {
      Close(close_reason_);
    } else {
      DoRead();
    }
  }

  // A request that started but has not completed gets request_timeout_ms in all, however slowly
  // its bytes trickle in.
  void UpdateTimer(std::string_view rest) {
    // (A front end may consume a body as it arrives, so an empty buffer can still be mid-request.)
    bool mid = !close_after_write_ && handler_->MidRequest(rest);
    if (mid == timer_armed_) return;
    timer_armed_ = mid;
    if (!mid) {
      timer_.cancel();
      return;
    }
    timer_.expires_after(std::chrono::milliseconds(ctx_->options->request_timeout_ms));
    timer_.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
      if (ec || !self->timer_armed_ || self->closed_) return;
      self->ctx_->metrics->CountMalformed(self->protocol_);
      self->Close(Disconnect::kTimeout);
    });
  }

  void DoWrite() {
    writing_ = true;
    sending_.swap(out_);
    out_.clear();
    boost::asio::async_write(socket_, boost::asio::buffer(sending_),
                             [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                               size_t n) { self->OnWrite(ec, n); });
  }

  void OnWrite(const boost::system::error_code& ec, size_t n) {
    writing_ = false;
    ctx_->metrics->CountBytes(protocol_, 0, n);
    if (sending_.capacity() > 4 * kReadChunk) std::string().swap(sending_);
    sending_.clear();
    if (closed_) return;
    if (ec) {
      Close(Disconnect::kIoError);
      return;
    }
    if (close_after_write_) {
      Close(close_reason_);
      return;
    }
    // The front end may have stopped early at max_output_bytes: finish what is buffered first.
    if (in_len_ > 0) {
      ProcessInput();
    } else {
      DoRead();
    }
  }

  void Close(Disconnect why) {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    ctx_->metrics->ConnectionClosed(protocol_, why);
    tracker_->Remove(this);
    boost::system::error_code ignored;
    if (why == Disconnect::kProtocolError || why == Disconnect::kTooLarge) {
      // The client may still be sending the request we refused; closing with unread input makes
      // the kernel reset the connection, and the client might never read our error reply. Stop
      // sending, drain its input for a moment, then close.
      socket_.shutdown(Socket::shutdown_send, ignored);
      timer_.expires_after(std::chrono::seconds(1));
      timer_.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
        if (ec) return;
        boost::system::error_code e;
        self->socket_.close(e);
      });
      Drain();
      return;
    }
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  void Drain() {
    in_.resize(kReadChunk);
    socket_.async_read_some(
        boost::asio::buffer(in_.data(), in_.size()),
        [self = this->shared_from_this()](const boost::system::error_code& ec, size_t) {
          if (ec) {
            self->timer_.cancel();
            boost::system::error_code e;
            self->socket_.close(e);
            return;
          }
          self->Drain();
        });
  }

  Socket socket_;
  boost::asio::steady_timer timer_;
  const Protocol protocol_;
  ServerContext* const ctx_;
  ConnectionTracker* const tracker_;
  ClientInfo client_;
  std::unique_ptr<ProtocolHandler> handler_;
  std::string in_;
  size_t in_start_ = 0, in_len_ = 0;
  std::string out_, sending_;
  bool writing_ = false;
  bool closed_ = false;
  bool timer_armed_ = false;
  bool close_after_write_ = false;
  Disconnect close_reason_ = Disconnect::kClient;
};

}  // namespace varve::server
