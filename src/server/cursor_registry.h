// CursorRegistry: server-side iterators behind Redis SCAN's numeric cursors (and any protocol
// that pages through keys). A cursor is valid on every connection; an idle one expires.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "varve/iterator.h"

namespace varve::server {

class CursorRegistry {
 public:
  explicit CursorRegistry(size_t max_cursors = 1024,
                          std::chrono::seconds idle_timeout = std::chrono::seconds(300))
      : max_cursors_(max_cursors), idle_timeout_(idle_timeout) {}

  // Stores it and returns its cursor id (never 0, which means "start" / "done").
  uint64_t Put(std::unique_ptr<Iterator> it) {
    std::lock_guard lock(mu_);
    Expire();
    while (cursors_.size() >= max_cursors_) cursors_.erase(cursors_.begin());  // oldest id
    uint64_t id = next_id_++;
    cursors_[id] = Entry{std::move(it), Clock::now()};
    return id;
  }
  // Takes the iterator back (nullptr if unknown or expired); Put it again to continue.
  std::unique_ptr<Iterator> Take(uint64_t id) {
    std::lock_guard lock(mu_);
    auto found = cursors_.find(id);
    if (found == cursors_.end()) return nullptr;
    std::unique_ptr<Iterator> it = std::move(found->second.it);
    cursors_.erase(found);
    return it;
  }
  // Drops every cursor (before the DB closes).
  void Clear() {
    std::lock_guard lock(mu_);
    cursors_.clear();
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::unique_ptr<Iterator> it;
    Clock::time_point last_used;
  };
  void Expire() {
    auto now = Clock::now();
    for (auto e = cursors_.begin(); e != cursors_.end();) {
      e = now - e->second.last_used > idle_timeout_ ? cursors_.erase(e) : std::next(e);
    }
  }

  const size_t max_cursors_;
  const std::chrono::seconds idle_timeout_;
  std::mutex mu_;
  std::map<uint64_t, Entry> cursors_;
  uint64_t next_id_ = 1;
};

}  // namespace varve::server
