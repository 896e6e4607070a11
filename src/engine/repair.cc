#include "engine/repair.h"

#include <set>

#include "engine/record.h"
#include "engine/segment_io.h"
#include "util/clock.h"

namespace varve {

using namespace format;

namespace {

struct Salvage {
  std::string data;  // the rewritten segment, header included
  uint64_t records = 0;
  uint64_t damaged_bytes = 0;
  std::vector<std::string> problems;
};

// Scans a segment the way recovery does (skipping damage to the next good record) and keeps the
// intact records of committed batches and single writes.
Status SalvageSegment(Env* env, const std::string& path, uint32_t id, Salvage* out, bool* damaged) {
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env->NewRandomAccessFile(path));
  file->AdviseSequential();
  VARVE_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  char head[kFileHeaderBytes] = {};
  VARVE_ASSIGN_OR_RETURN(size_t n, file->Read(0, kFileHeaderBytes, head));
  FileHeader fh;
  Status hs = DecodeFileHeader(head, n, kSegmentMagic, path, &fh);
  if (!hs.ok() || fh.segment_id != id) {
    *damaged = true;
    out->problems.push_back(hs.ok() ? "header names segment " + std::to_string(fh.segment_id)
                                    : hs.message());
    // Unknown flags: mark it a compaction output, so it is never taken for the writer's tail.
    fh = FileHeader{kSegmentMagic, kFileFlagCompactionOutput, id, 0};
    if (size < kFileHeaderBytes) size = kFileHeaderBytes;
  }
  out->data.assign(kFileHeaderBytes, '\0');
  EncodeFileHeader(out->data.data(), fh);
  bool writer_segment = (fh.flags & kFileFlagCompactionOutput) == 0;

  SegmentScanner scanner(file.get(), size, path);
  std::string batch;  // encoded records of the batch in progress
  uint64_t batch_records = 0, max_seq = 0;
  auto keep = [&](const RecordView& rec) {
    max_seq = std::max(max_seq, rec.seq);
    std::string encoded;
    AppendRecord(&encoded, rec.flags, rec.seq, rec.expiry_ms, rec.key, rec.value, rec.user_flags);
    if (rec.in_batch()) {
      batch += encoded;
      ++batch_records;
      if (!rec.batch_commit()) return;
      out->data += batch;
      out->records += batch_records;
      batch.clear();
      batch_records = 0;
      return;
    }
    if (!batch.empty()) {
      *damaged = true;
      out->problems.push_back("a batch without its commit record");
      batch.clear();
      batch_records = 0;
    }
    out->data += encoded;
    ++out->records;
  };
  while (true) {
    RecordView rec;
    uint64_t offset;
    std::string why;
    SegmentScanner::Step step = scanner.Next(&rec, &offset, &why);
    if (step == SegmentScanner::Step::kRecord) {
      keep(rec);
      continue;
    }
    if (!scanner.io_status().ok()) return scanner.io_status();
    // Zeros to the end: space a mapped writer reserved ahead of its data (a crash left it).
    if (scanner.AtReservedEnd(step, offset, writer_segment)) step = SegmentScanner::Step::kEnd;
    if (!scanner.io_status().ok()) return scanner.io_status();
    if (step == SegmentScanner::Step::kEnd) {
      if (!batch.empty()) {
        *damaged = true;
        out->problems.push_back("a batch without its commit record at the end");
      }
      return Status::Ok();
    }
    *damaged = true;
    RecordView next;
    uint64_t next_offset;
    SegmentScanner::Step r =
        scanner.Resync(offset, writer_segment ? max_seq : 0, &next, &next_offset);
    if (!scanner.io_status().ok()) return scanner.io_status();
    std::string what = step == SegmentScanner::Step::kTruncated ? "a truncated record" : why;
    if (r != SegmentScanner::Step::kRecord) {
      out->damaged_bytes += size - offset;
      out->problems.push_back(what + " at offset " + std::to_string(offset) + ", " +
                              std::to_string(size - offset) + " bytes to the end dropped");
      return Status::Ok();
    }
    out->damaged_bytes += next_offset - offset;
    out->problems.push_back(what + " at offset " + std::to_string(offset) + ", " +
                            std::to_string(next_offset - offset) + " bytes dropped");
    // Unlike an open, keep the intact records of a batch the damage hit: only bit rot puts
    // records after an unfinished batch, so the batch committed (its commit record still
    // decides whether it is kept).
    keep(next);
  }
}

}  // namespace

Status RepairStore(Env* env, const std::string& dir, RepairReport* report) {
  if (!env->FileExists(dir)) return Status::NotFound(dir + ": no such directory");
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<FileLock> lock, env->LockFile(dir + "/LOCK"));
  VARVE_ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  std::set<uint32_t> ids = SegmentIdsIn(names);
  // Finish a swap that an earlier, interrupted repair started.
  for (const std::string& name : names) {
    uint32_t id;
    std::string_view ext;
    if (name.size() != 22 || !name.ends_with(".repair") ||
        !ParseFileName(std::string_view(name).substr(0, 15), &id, &ext) || ext != "vlog") {
      continue;
    }
    std::string tmp = dir + "/" + name;
    if (ids.count(id) == 0) {
      VARVE_RETURN_IF_ERROR(env->RenameFile(tmp, dir + "/" + SegmentFileName(id)));
      ids.insert(id);
    } else {
      VARVE_RETURN_IF_ERROR(env->RemoveFile(tmp));
    }
    VARVE_RETURN_IF_ERROR(env->SyncDir(dir));
  }
  std::string lost = dir + "/lost+found";
  for (uint32_t id : ids) {
    ++report->segments;
    std::string path = dir + "/" + SegmentFileName(id);
    std::string hint = dir + "/" + HintFileName(id);
    Salvage salvage;
    bool damaged = false;
    VARVE_RETURN_IF_ERROR(SalvageSegment(env, path, id, &salvage, &damaged));
    VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f, env->NewRandomAccessFile(path));
    VARVE_ASSIGN_OR_RETURN(uint64_t size, f->Size());
    f.reset();
    uint64_t described = env->FileExists(hint) ? HintSegmentBytes(env, hint) : 0;
    if (described > size) {
      damaged = true;
      salvage.damaged_bytes += described - size;
      salvage.problems.push_back(std::to_string(described - size) +
                                 " bytes missing at the end (the hint describes " +
                                 std::to_string(described) + ")");
    }
    if (!damaged) continue;

    // Write the salvaged copy, then swap it in; the original goes to lost+found.
    std::string tmp = path + ".repair";
    {
      VARVE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> w, env->NewWritableFile(tmp));
      VARVE_RETURN_IF_ERROR(w->Append(salvage.data));
      VARVE_RETURN_IF_ERROR(w->Sync());
      VARVE_RETURN_IF_ERROR(w->Close());
    }
    VARVE_RETURN_IF_ERROR(env->CreateDirIfMissing(lost));
    std::string kept = lost + "/" + SegmentFileName(id) + "." + std::to_string(NowUnixMs());
    // The hint, a checkpoint of an unfinished one, and the index checkpoint (checked by size and
    // header only) describe the old layout.
    for (const std::string& stale : {hint, dir + "/" + HintMarkFileName(id),
                                     dir + "/" + std::string(format::kIndexFileName)}) {
      if (env->FileExists(stale)) VARVE_RETURN_IF_ERROR(env->RemoveFile(stale));
    }
    VARVE_RETURN_IF_ERROR(env->RenameFile(path, kept));
    VARVE_RETURN_IF_ERROR(env->RenameFile(tmp, path));
    VARVE_RETURN_IF_ERROR(env->SyncDir(lost));
    VARVE_RETURN_IF_ERROR(env->SyncDir(dir));

    ++report->segments_rewritten;
    report->records_kept += salvage.records;
    report->bytes_dropped += salvage.damaged_bytes;
    std::string note = SegmentFileName(id) + ": ";
    for (size_t i = 0; i < salvage.problems.size(); ++i) {
      note += (i ? "; " : "") + salvage.problems[i];
    }
    note += "; kept " + std::to_string(salvage.records) + " intact records; original moved to " +
            kept.substr(dir.size() + 1);
    report->notes.push_back(note);
  }
  // Hints whose segment is gone are removed by the next open; nothing else to do here.
  return Status::Ok();
}

}  // namespace varve
