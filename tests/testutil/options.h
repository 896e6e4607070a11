// Options the engine tests share.
#pragma once

#include "varve/options.h"

namespace varve::testing {

// 1 MiB segments (several per test) and compaction only when a test asks for it.
inline Options SmallSegmentOptions() {
  Options o;
  o.segment_size_bytes = 1 << 20;
  o.background_compaction = false;
  return o;
}

}  // namespace varve::testing
