// One pending job run on its own thread at a deadline (memcached's "flush_all <delay>"). A new
// Schedule replaces the pending one, like a new flush_all replaces the earlier deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace varve::server {

class DelayedTask {
 public:
  using Clock = std::chrono::steady_clock;

  explicit DelayedTask(std::function<void()> job) : job_(std::move(job)) {}
  ~DelayedTask() { Stop(); }
  DelayedTask(const DelayedTask&) = delete;
  DelayedTask& operator=(const DelayedTask&) = delete;

  void Schedule(Clock::time_point deadline) {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    deadline_ = deadline;
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    cv_.notify_all();
  }

  // Drops the pending job, if any.
  void Cancel() {
    std::lock_guard lock(mu_);
    deadline_.reset();
    cv_.notify_all();
  }

  bool pending() const {
    std::lock_guard lock(mu_);
    return deadline_.has_value();
  }

  // Drops the pending job and waits for a running one; later Schedules are ignored.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
      deadline_.reset();
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stopped_) {
      if (!deadline_) {
        cv_.wait(lock);
      } else if (Clock::now() < *deadline_) {
        cv_.wait_until(lock, *deadline_);
      } else {
        deadline_.reset();
        lock.unlock();
        job_();
        lock.lock();
      }
    }
  }

  const std::function<void()> job_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Clock::time_point> deadline_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace varve::server
