// Appends through a mapping of the writer's segment (Options::mmap_writes): the zeros reserved
// ahead of the data are cut at close and after a crash, a killed process loses no acknowledged
// write, `check` sees no damage in a store that is open, both settings read each other's files,
// and a full disk is an error, never a crash. In sync mode the reserved space is written zeros
// (no unwritten extents for each fdatasync to convert).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fiemap.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "engine/check.h"
#include "testutil/options.h"
#include "testutil/store_files.h"
#include "testutil/temp_dir.h"
#include "varve/db.h"

namespace varve {
namespace {

namespace fs = std::filesystem;
using testing::SegmentFiles;
using testing::TempDir;

Options Opts(bool mmap_writes = true, Durability durability = Durability::kNone) {
  Options o = testing::SmallSegmentOptions();
  o.mmap_writes = mmap_writes;
  o.durability = durability;
  return o;
}

#ifndef FS_IOC_FIEMAP  // <linux/fs.h>, which clashes with <sys/mount.h>
#define FS_IOC_FIEMAP _IOWR('f', 11, struct fiemap)
#endif

// Whether any extent of file is unwritten (allocated, reads as zeros); nullopt if the file
// system does not report extents.
std::optional<bool> HasUnwrittenExtent(const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  constexpr unsigned kExtents = 256;
  std::vector<char> buf(sizeof(fiemap) + kExtents * sizeof(fiemap_extent));
  auto* map = reinterpret_cast<fiemap*>(buf.data());
  map->fm_start = 0;
  map->fm_length = FIEMAP_MAX_OFFSET;
  map->fm_extent_count = kExtents;
  int rc = ::ioctl(fd, FS_IOC_FIEMAP, map);
  ::close(fd);
  if (rc != 0) return std::nullopt;
  for (unsigned i = 0; i < map->fm_mapped_extents; ++i) {
    if (map->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN) return true;
  }
  return false;
}

std::string ValueFor(int i) { return "value-" + std::to_string(i) + std::string(90, 'v'); }

std::string HintOf(const std::string& seg) { return seg.substr(0, seg.size() - 4) + "hint"; }

void AppendZeros(const std::string& file, size_t n) {
  std::ofstream f(file, std::ios::app | std::ios::binary);
  f << std::string(n, '\0');
}

std::unique_ptr<DB> OpenOrDie(const Options& o, const std::string& dir) {
  Result<std::unique_ptr<DB>> db = DB::Open(o, dir);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

void ExpectKeys(DB* db, int from, int to) {
  for (int i = from; i < to; ++i) {
    Result<std::string> r = db->Get("k" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    ASSERT_EQ(*r, ValueFor(i)) << i;
  }
}

std::vector<Damage> Check(const std::string& dir) {
  CheckReport report;
  EXPECT_TRUE(CheckStore(Env::Default(), dir, &report).ok());
  return report.damage;
}

class MmapWritesTest : public ::testing::Test {
 protected:
  void Fill(const Options& o, int from, int to) {
    auto db = OpenOrDie(o, tmp_.path());
    ASSERT_NE(db, nullptr);
    for (int i = from; i < to; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i)).ok());
  }
  TempDir tmp_;
};

TEST_F(MmapWritesTest, CloseCutsTheReservedSpace) {
  Fill(Opts(), 0, 100);
  std::string seg = SegmentFiles(tmp_.path()).back();
  // 100 records of ~130 bytes: far less than one 1 MiB reservation.
  EXPECT_LT(fs::file_size(seg), 100u * 200);
  EXPECT_TRUE(Check(tmp_.path()).empty());
}

TEST_F(MmapWritesTest, ReservedZerosAfterTheTailAreCutAfterACrash) {
  Fill(Opts(), 0, 100);
  std::string seg = SegmentFiles(tmp_.path()).back();
  uint64_t data = fs::file_size(seg);
  fs::remove(HintOf(seg));  // as after a crash: no hint for the tail
  AppendZeros(seg, 300 << 10);
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    ASSERT_NE(db, nullptr);
    ExpectKeys(db.get(), 0, 100);
    ASSERT_TRUE(db->Put("k100", ValueFor(100)).ok());
  }
  auto db = OpenOrDie(Opts(), tmp_.path());
  ExpectKeys(db.get(), 0, 101);
  EXPECT_LT(fs::file_size(seg), data + 1000);  // the new record follows the old ones directly
}

TEST_F(MmapWritesTest, ReservedZerosAfterASealedSegmentAreCut) {
  Fill(Opts(), 0, 20000);  // several segments
  std::vector<std::string> segs = SegmentFiles(tmp_.path());
  ASSERT_GE(segs.size(), 3u);
  uint64_t data = fs::file_size(segs[0]);
  fs::remove(HintOf(segs[0]));
  AppendZeros(segs[0], 200 << 10);
  auto db = OpenOrDie(Opts(), tmp_.path());
  ASSERT_NE(db, nullptr);
  ExpectKeys(db.get(), 0, 20000);
  EXPECT_EQ(fs::file_size(segs[0]), data);
}

TEST_F(MmapWritesTest, ZerosAfterTheEndAHintDescribesAreCut) {
  // A crash can lose the cut made at close while the hint written after it survives.
  Fill(Opts(), 0, 100);
  std::string seg = SegmentFiles(tmp_.path()).back();
  ASSERT_TRUE(fs::exists(HintOf(seg)));
  uint64_t data = fs::file_size(seg);
  AppendZeros(seg, 100 << 10);
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    ASSERT_NE(db, nullptr);
    ExpectKeys(db.get(), 0, 100);
    ASSERT_TRUE(db->Put("k100", ValueFor(100)).ok());
  }
  EXPECT_LT(fs::file_size(seg), data + 1000);
  auto db = OpenOrDie(Opts(), tmp_.path());
  ExpectKeys(db.get(), 0, 101);
  db.reset();
  EXPECT_TRUE(Check(tmp_.path()).empty());
}

TEST_F(MmapWritesTest, SyncModeReservesWrittenZeros) {
  for (Durability d : {Durability::kNone, Durability::kSync}) {
    TempDir dir;
    auto db = OpenOrDie(Opts(true, d), dir.path());
    ASSERT_NE(db, nullptr);
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i)).ok());
    std::string seg = SegmentFiles(dir.path()).back();
    EXPECT_GT(fs::file_size(seg), 50u * 200);  // reserved ahead of the data
    std::optional<bool> unwritten = HasUnwrittenExtent(seg);
    if (!unwritten.has_value()) GTEST_SKIP() << "no FIEMAP on this file system";
    // Without sync, fallocate (unwritten blocks) where the file system has it.
    if (d == Durability::kSync) {
      EXPECT_FALSE(*unwritten) << seg;
    }
    for (const Damage& dmg : Check(dir.path()))
      ADD_FAILURE() << dmg.file << " " << dmg.offset << " " << dmg.what;
  }
}

TEST_F(MmapWritesTest, SyncModeWritesAcrossReservationsAndSegments) {
  const Options o = Opts(true, Durability::kSync);
  {
    auto db = OpenOrDie(o, tmp_.path());
    ASSERT_NE(db, nullptr);
    for (int b = 0; b < 200; ++b) {  // about 2.6 MiB: three segments
      WriteBatch batch;
      for (int i = b * 100; i < (b + 1) * 100; ++i) batch.Put("k" + std::to_string(i), ValueFor(i));
      ASSERT_TRUE(db->Write(batch).ok());
    }
    ASSERT_TRUE(db->Put("last", "x").ok());
  }
  EXPECT_GE(SegmentFiles(tmp_.path()).size(), 3u);
  auto db = OpenOrDie(o, tmp_.path());
  ASSERT_NE(db, nullptr);
  ExpectKeys(db.get(), 0, 20000);
  EXPECT_EQ(*db->Get("last"), "x");
  db.reset();
  EXPECT_TRUE(Check(tmp_.path()).empty());
}

TEST_F(MmapWritesTest, CheckSeesNoDamageInAnOpenStore) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  ASSERT_NE(db, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i)).ok());
  std::string seg = SegmentFiles(tmp_.path()).back();
  EXPECT_GT(fs::file_size(seg), 100u * 200);  // reserved ahead of the data
  for (const Damage& d : Check(tmp_.path()))
    ADD_FAILURE() << d.file << " " << d.offset << " " << d.what;
}

TEST_F(MmapWritesTest, KilledProcessLosesNoAcknowledgedWrite) {
  // Durability none: nothing is synced, yet every write a killed process acknowledged is in the
  // page cache through the mapping.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Options o = Opts();
    o.durability = Durability::kNone;
    Result<std::unique_ptr<DB>> db = DB::Open(o, tmp_.path());
    if (!db.ok()) _exit(2);
    for (int i = 0; i < 30000; ++i) {
      if (!(*db)->Put("k" + std::to_string(i), ValueFor(i)).ok()) _exit(3);
    }
    kill(getpid(), SIGKILL);
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exit " << WEXITSTATUS(status);
  auto db = OpenOrDie(Opts(), tmp_.path());
  ASSERT_NE(db, nullptr);
  ExpectKeys(db.get(), 0, 30000);
  EXPECT_EQ(db->GetStats().keys, 30000u);
}

TEST_F(MmapWritesTest, BothSettingsReadEachOthersFiles) {
  Fill(Opts(false), 0, 5000);
  Fill(Opts(true), 5000, 10000);
  Fill(Opts(false), 10000, 15000);
  auto db = OpenOrDie(Opts(true), tmp_.path());
  ExpectKeys(db.get(), 0, 15000);
  db.reset();
  EXPECT_TRUE(Check(tmp_.path()).empty());
}

// A real full disk (tmpfs of a few MiB; needs root): Put fails with a clear error before any
// copy can fault, acknowledged writes stay readable, and all of them survive a reopen once there
// is room again.
TEST_F(MmapWritesTest, FullDiskIsAnErrorNotACrash) {
  std::string mnt = tmp_.Sub("small");
  fs::create_directories(mnt);
  if (geteuid() != 0 || mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=3m") != 0) {
    GTEST_SKIP() << "needs root to mount a small tmpfs: " << std::strerror(errno);
  }
  // Reserved with fallocate, then (sync mode) with written zeros.
  for (Durability d : {Durability::kNone, Durability::kSync}) {
    SCOPED_TRACE(d == Durability::kSync ? "sync" : "none");
    std::string dir = mnt + "/db";
    int acked = 0;
    Status failure;
    {
      auto db = OpenOrDie(Opts(true, d), dir);
      ASSERT_NE(db, nullptr);
      for (int i = 0; i < 100000; ++i) {
        Status s = db->Put("k" + std::to_string(i), ValueFor(i));
        if (!s.ok()) {
          failure = s;
          break;
        }
        acked = i + 1;
      }
      EXPECT_FALSE(failure.ok());
      EXPECT_NE(failure.ToString().find("No space"), std::string::npos) << failure.ToString();
      EXPECT_GT(acked, 1000);
      ExpectKeys(db.get(), 0, acked);
    }
    ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT, "size=32m"), 0)
        << std::strerror(errno);
    {
      auto db = OpenOrDie(Opts(true, d), dir);
      if (db != nullptr) ExpectKeys(db.get(), 0, acked);
    }
    fs::remove_all(dir);
    ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT, "size=3m"), 0)
        << std::strerror(errno);
  }
  ASSERT_EQ(umount(mnt.c_str()), 0) << std::strerror(errno);
}

}  // namespace
}  // namespace varve
