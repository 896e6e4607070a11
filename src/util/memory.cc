#include "util/memory.h"

#include <malloc.h>

#include <cstddef>

// Resolved only when jemalloc is linked into the process (the binaries link it; sanitizer builds
// and library users may not).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace varve {

void ReleaseFreeMemory() {
  if (mallctl != nullptr) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena (MALLCTL_ARENAS_ALL is 4096).
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace varve
