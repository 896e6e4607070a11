#include "env/mmap_guard.h"

#include <signal.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <cstring>
#include <mutex>

namespace varve {
namespace {

struct sigaction g_previous_sigbus;

void OnSigbus(int sig, siginfo_t* info, void* context) {
  if (tls_sigbus_guard != nullptr) {
    tls_sigbus_address = info != nullptr ? info->si_addr : nullptr;
    siglongjmp(*tls_sigbus_guard, 1);
  }
  if ((g_previous_sigbus.sa_flags & SA_SIGINFO) != 0 && g_previous_sigbus.sa_sigaction != nullptr) {
    g_previous_sigbus.sa_sigaction(sig, info, context);
    return;
  }
  // Not ours: restore the earlier disposition; the faulting access runs again under it.
  ::sigaction(SIGBUS, &g_previous_sigbus, nullptr);
}

}  // namespace

void InstallSigbusHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous_sigbus);
  });
}

bool GuardedCopy(char* dst, const char* src, size_t n, bool forward) {
  return RunGuarded([&] {
    if (!forward) {
      std::memcpy(dst, src, n);
      return;
    }
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    }
#endif
    for (; i < n; ++i) reinterpret_cast<volatile char*>(dst)[i] = src[i];
  });
}

}  // namespace varve
