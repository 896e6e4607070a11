// Returning freed heap memory to the operating system.
#pragma once

namespace varve {

// Gives the pages of freed heap blocks back to the OS: jemalloc's arenas are purged when the
// process runs on jemalloc, else glibc's heap is trimmed. Call after a burst of short-lived
// allocations (opening a store), so that resident memory is what stays in use.
void ReleaseFreeMemory();

}  // namespace varve
