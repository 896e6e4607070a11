// CheckStore: an offline, read-only verifier of a store's files, behind `varve check`.
//
// It never opens the DB and never takes the directory LOCK, so it may run against a store that
// another process has open. Files that compaction deletes meanwhile are skipped, and an
// incomplete record at the end of a segment that grew during the check is taken for an append in
// progress, not damage. Segments that an OBSOLETE file lists (compaction inputs whose deletion
// was interrupted; the next open deletes them) are not checked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "varve/env.h"
#include "varve/status.h"

namespace varve {

// One problem found on disk.
struct Damage {
  std::string file;     // path of the damaged file: dir + "/" + file name
  uint64_t offset = 0;  // byte offset in that file of the damaged record, entry or header
  std::string what;     // what is wrong, and what the next open will do about it if not obvious
};

struct CheckReport {
  uint64_t segments = 0;    // segment files checked
  uint64_t records = 0;     // records whose checksum verified
  uint64_t hint_files = 0;  // hint files checked
  uint64_t bytes = 0;       // bytes of the files checked
  std::vector<Damage> damage;
};

// Verifies every segment file in dir (header, then every record's checksum, in order) and every
// hint file (header, footer, checksum, and that each entry names a record of its segment with
// the same key, sequence and size). Reported as damage, among others:
//   - a record that fails its checksum or is cut short;
//   - "torn tail (cut at next open)": the newest non-compaction segment ends inside a record or
//     inside an uncommitted batch, as after a crash; the next open drops those bytes;
//   - "stale hint": a hint describing a different segment size than the segment has (but for
//     a writer segment's close-time hint, which describes the records before the
//     store's reopen: the next open loads it and scans the rest);
//   - a hint file without its segment; a damaged OBSOLETE file.
// Appends to report->damage and adds to the counters (the caller passes a fresh report).
// Thread-compatible: one call per report.
// Returns non-OK only if dir itself cannot be listed; everything else is damage.
Status CheckStore(Env* env, const std::string& dir, CheckReport* report);

}  // namespace varve
