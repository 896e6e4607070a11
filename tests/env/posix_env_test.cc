// Reads through the POSIX Env's file mappings: when a larger read checks that its pages are
// cached (ResidencyGuess), and that a file cut short under reads that no longer check gives
// short reads and refused visits, never a crash or wrong bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "env/residency_guess.h"
#include "testutil/temp_dir.h"
#include "varve/env.h"

namespace varve {
namespace {

namespace fs = std::filesystem;
using Plan = ResidencyGuess::Plan;

// Reports n checks that found every page cached.
void CheckCached(ResidencyGuess& g, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(g.Next(), Plan::kCheck) << i;
    g.Checked(true);
  }
}

TEST(ResidencyGuessTest, TrustsAfterAStreakOfCachedChecksAndChecksAgainPeriodically) {
  ResidencyGuess g;
  CheckCached(g, ResidencyGuess::kMinTrustAfter - 1);
  EXPECT_FALSE(g.trusting());
  CheckCached(g, 1);
  EXPECT_TRUE(g.trusting());
  for (uint32_t i = 0; i < ResidencyGuess::kTrustedReads; ++i) {
    ASSERT_EQ(g.Next(), Plan::kTrust) << i;
    g.Trusted(true);
  }
  // A check again; the streak goes on, so one cached answer renews the trust.
  CheckCached(g, 1);
  EXPECT_TRUE(g.trusting());
  EXPECT_EQ(g.Next(), Plan::kTrust);
}

TEST(ResidencyGuessTest, AMissSendsReadsToPreadAndRestartsTheStreak) {
  ResidencyGuess g;
  CheckCached(g, ResidencyGuess::kMinTrustAfter - 1);
  ASSERT_EQ(g.Next(), Plan::kCheck);
  g.Checked(false);
  for (uint32_t i = 0; i < ResidencyGuess::kSkipAfterMiss; ++i) ASSERT_EQ(g.Next(), Plan::kPread);
  CheckCached(g, ResidencyGuess::kMinTrustAfter - 1);
  EXPECT_FALSE(g.trusting());
  CheckCached(g, 1);
  EXPECT_TRUE(g.trusting());
}

TEST(ResidencyGuessTest, ASlowTrustedReadEndsTheTrustAndDoublesTheStreakNeeded) {
  ResidencyGuess g;
  CheckCached(g, ResidencyGuess::kMinTrustAfter);
  ASSERT_EQ(g.Next(), Plan::kTrust);
  g.Trusted(false);
  EXPECT_FALSE(g.trusting());
  EXPECT_EQ(g.trust_after(), 2 * ResidencyGuess::kMinTrustAfter);
  // No run of preads after a slow read: checks.
  CheckCached(g, 2 * ResidencyGuess::kMinTrustAfter - 1);
  EXPECT_FALSE(g.trusting());
  CheckCached(g, 1);
  ASSERT_TRUE(g.trusting());
  // A trusted run without a slow read halves it again.
  for (uint32_t i = 0; i < ResidencyGuess::kTrustedReads; ++i) {
    ASSERT_EQ(g.Next(), Plan::kTrust);
    g.Trusted(true);
  }
  EXPECT_EQ(g.trust_after(), ResidencyGuess::kMinTrustAfter);
}

TEST(ResidencyGuessTest, RepeatedSlowReadsStopTheTrustUpToACap) {
  ResidencyGuess g;
  for (int round = 0; round < 20; ++round) {
    uint32_t need = g.trust_after();
    CheckCached(g, need);
    ASSERT_EQ(g.Next(), Plan::kTrust) << round;
    g.Trusted(false);
    EXPECT_EQ(g.trust_after(), std::min(2 * need, ResidencyGuess::kMaxTrustAfter));
  }
  EXPECT_EQ(g.trust_after(), ResidencyGuess::kMaxTrustAfter);
}

constexpr size_t kChunk = 10000;  // a record larger than a page, as the halodb values
constexpr int kChunks = 32;

std::string ChunkBytes(int i) {
  std::string s(kChunk, '\0');
  for (size_t j = 0; j < kChunk; ++j) s[j] = static_cast<char>('a' + (i * 7 + j) % 26);
  return s;
}

struct Visit {
  std::string copy;
  static void Run(const char* data, void* arg) {
    auto* v = static_cast<Visit*>(arg);
    std::memcpy(v->copy.data(), data, v->copy.size());
  }
};

TEST(PosixRandomAccessFileTest, FileCutShortUnderTrustedMappedReadsGivesShortReadsNotCrashes) {
  testing::TempDir tmp;
  const std::string path = tmp.Sub("data");
  {
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < kChunks; ++i) f << ChunkBytes(i);
  }
  Result<std::unique_ptr<RandomAccessFile>> file = Env::Default()->NewRandomAccessFile(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  (*file)->MapForReads(kChunks * kChunk);
  const RandomAccessFile& r = **file;
  // A thread of its own: a fresh guess, which the cached file soon makes trusting.
  std::thread([&] {
    std::string buf(kChunk, '\0');
    // (Checked after every read: a read slowed down by preemption ends a trust, and the trust
    // lapses for one read every kTrustedReads + 1.)
    for (int read = 0; read < 20000 && !tls_residency_guess.trusting(); ++read) {
      const int i = read % kChunks;
      Result<size_t> n = r.Read(i * kChunk, kChunk, buf.data());
      ASSERT_TRUE(n.ok() && *n == kChunk);
      ASSERT_EQ(buf, ChunkBytes(i));
    }
    ASSERT_TRUE(tls_residency_guess.trusting()) << "the cached file never earned the trust";

    const int kept = kChunks / 2;  // chunks left whole; the next one is cut in its middle
    fs::resize_file(path, kept * kChunk + kChunk / 2);
    int trusted_past_the_cut = 0;
    for (int round = 0; round < 200; ++round) {
      for (int i = 0; i < kChunks; ++i) {
        const bool cut = i >= kept;
        if (cut && tls_residency_guess.trusting()) ++trusted_past_the_cut;
        if (round % 2 == 0) {
          std::fill(buf.begin(), buf.end(), '\0');
          Result<size_t> n = r.Read(i * kChunk, kChunk, buf.data());
          ASSERT_TRUE(n.ok()) << n.status().ToString();
          if (!cut) {
            ASSERT_EQ(*n, kChunk);
            ASSERT_EQ(buf, ChunkBytes(i));
          } else {
            ASSERT_LT(*n, kChunk) << "chunk " << i;
            ASSERT_EQ(buf.substr(0, *n), ChunkBytes(i).substr(0, *n));
          }
        } else {
          Visit v;
          v.copy.assign(kChunk, '\0');
          const bool visited = r.VisitMapped(i * kChunk, kChunk, Visit::Run, &v);
          if (cut) {
            ASSERT_FALSE(visited) << "chunk " << i;
          } else if (visited) {
            ASSERT_EQ(v.copy, ChunkBytes(i));
          }
        }
      }
    }
    // Cached reads renew the trust after each refused one: reads past the cut ran trusted.
    EXPECT_GT(trusted_past_the_cut, 0);
  }).join();
}

}  // namespace
}  // namespace varve
