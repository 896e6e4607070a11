// RepairStore: salvages every intact record of a damaged store, behind `varve repair`.
//
// Each damaged segment (a record that fails its checksum or is cut short, a batch without its
// commit, a bad header, or a file shorter than its hint describes) is rewritten with exactly its
// intact records — same segment id, same sequence numbers, and the intact records of a batch the
// damage hit if its commit record survived — and the original is moved to
// DIR/lost+found/ for inspection. Undamaged segments are left alone. Each rewrite is atomic
// (write, sync, rename), so an interrupted repair can simply be run again.
//
// What the store holds afterwards: for every key, its newest intact record. Where damage
// destroyed a key's newest record, an older version of the key (or, for a destroyed tombstone,
// the deleted value) can become visible again; the report lists the bytes dropped so the owner
// can judge. Takes the directory LOCK: the store must not be open elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "varve/env.h"
#include "varve/status.h"

namespace varve {

struct RepairReport {
  uint64_t segments = 0;            // segment files examined
  uint64_t segments_rewritten = 0;  // damaged segments rewritten
  uint64_t records_kept = 0;        // intact records kept in rewritten segments
  uint64_t bytes_dropped = 0;       // damaged bytes left out of rewritten segments
  std::vector<std::string> notes;   // one line per damaged segment: what was found and kept
};

Status RepairStore(Env* env, const std::string& dir, RepairReport* report);

}  // namespace varve
