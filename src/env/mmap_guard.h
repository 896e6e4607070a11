// Guards reads of file mappings against SIGBUS. Touching a mapped page that cannot be read (a
// disk error, or a file cut short behind the store's back) raises SIGBUS; inside a guarded
// region the handler jumps back out of it, and the caller reports an I/O error instead of the
// process dying. Entering a region costs a sigsetjmp that saves no signal mask (no system call)
// and two thread-local stores. SIGBUS outside a region goes to the handler installed before
// (or the default action).
#pragma once

#include <setjmp.h>

#include <atomic>
#include <cstddef>

namespace varve {

// The jump buffer of the innermost region running on this thread; nullptr outside one.
// volatile: the guarded code does not read it, so its stores around the code must stay.
inline constinit thread_local sigjmp_buf* volatile tls_sigbus_guard = nullptr;
// The address whose access raised the last SIGBUS caught on this thread.
inline constinit thread_local const void* tls_sigbus_address = nullptr;

// Installs the handler the regions rely on (once per process; later calls do nothing). Call
// before creating a mapping whose reads run in regions.
void InstallSigbusHandler();

// Runs fn(); false if a read of a mapping in it raised SIGBUS (fn cut short at that read, and
// tls_sigbus_address names the address). The jump skips destructors: while fn reads a mapping
// it must hold no object it created that needs destroying, and no half-finished allocation
// (copy into a std::string after resizing it, not through assign). Regions nest.
namespace internal {
// fn runs out of line: code in the function that calls sigsetjmp is compiled for a second return
// (values kept in memory, not registers), which made a table Get measurably slower.
template <typename Fn>
[[gnu::noinline]] void RunOutOfLine(Fn& fn) {
  fn();
}
}  // namespace internal

template <typename Fn>
[[gnu::noinline]] bool RunGuarded(Fn&& fn) {
  sigjmp_buf* const outer = tls_sigbus_guard;
  sigjmp_buf jump;
  if (sigsetjmp(jump, 0) != 0) {
    tls_sigbus_guard = outer;
    return false;
  }
  tls_sigbus_guard = &jump;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  internal::RunOutOfLine(fn);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tls_sigbus_guard = outer;
  return true;
}

// Copies n bytes from or to a mapping; false if the copy raised SIGBUS. forward: copy front to
// back, so that a process killed during a copy into a shared mapping leaves a prefix of src
// (memcpy may store the end of a large block first).
bool GuardedCopy(char* dst, const char* src, size_t n, bool forward = false);

}  // namespace varve
