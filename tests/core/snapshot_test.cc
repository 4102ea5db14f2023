// Warm restart files (core/snapshot.h), on every engine configuration of the
// conformance suite: what one engine saves, a new one with the same options
// serves again; a file that is not whole, or from other settings, stores
// nothing.
#include "core/snapshot.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/key_prefixes.h"
#include "engine_test_util.h"
#include "gtest/gtest.h"

namespace tinycached::core::engine_test {
namespace {

class SnapshotTest : public EngineTest {
 protected:
  void SetUp() override {
    path_ =
        ::testing::TempDir() + "snapshot_test_" + GetParam().name + "_" + std::to_string(getpid());
    unlink(path_.c_str());
  }
  void TearDown() override {
    unlink(path_.c_str());
    unlink((path_ + ".tmp").c_str());
  }

  // Saves the current engine, then replaces it by a new one made with `o`.
  SaveReport SaveAndRemake(const StoreOptions& o) {
    engine_->StopMaintenance();
    absl::StatusOr<SaveReport> saved = SaveSnapshot(*engine_, clock_, path_);
    EXPECT_TRUE(saved.ok()) << saved.status();
    engine_.reset();
    Make(o);
    return saved.ok() ? *saved : SaveReport{};
  }

  std::string ReadFile() {
    std::ifstream in(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteFile(const std::string& bytes) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  bool FileExists() const {
    struct stat st {};
    return stat(path_.c_str(), &st) == 0;
  }

  // Every item the engine holds: key -> (value, flags, cas, exptime).
  struct Seen {
    std::string value;
    uint32_t flags;
    uint64_t cas;
    RelTime exptime;
    bool operator==(const Seen&) const = default;
  };
  std::map<std::string, Seen> Everything() {
    engine_->StopMaintenance();
    std::map<std::string, Seen> all;
    engine_->ExportItems([&](const ItemInfo& i) {
      EXPECT_TRUE(
          all.emplace(std::string(i.key), Seen{std::string(i.value), i.flags, i.cas, i.exptime})
              .second)
          << "shown twice: " << i.key;
    });
    return all;
  }

  std::string path_;
};

// A mix of every kind of item: text keys with flags and expiry, decimal and
// prefixed numbers (inline under the tiny engine), counters moved by incr,
// a value longer than a slab chunk.
void Fill(Engine& e, ThreadStats& stats) {
  for (int i = 0; i < 2000; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(e.Store(StoreMode::kSet, n, 0, 0, std::to_string(i * 7), 0, stats),
              StoreResult::kStored);
    ASSERT_EQ(e.Store(StoreMode::kSet, "user:" + n, 0, 0, "1", 0, stats), StoreResult::kStored);
    ASSERT_EQ(e.Store(StoreMode::kSet, "text:" + n, static_cast<uint32_t>(i), i % 3 == 0 ? 600 : 0,
                      ValueFor("text:" + n, 1, static_cast<size_t>(i % 50)), 0, stats),
              StoreResult::kStored);
  }
  char out[Engine::kDeltaMaxLength];
  size_t len = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(e.Delta("user:5", true, 1000, stats, out, &len), DeltaResult::kOk);
  }
  ASSERT_EQ(e.Store(StoreMode::kSet, "large", 9, 0, std::string(700 * 1024, 'L'), 0, stats),
            StoreResult::kStored);
}

TEST_P(SnapshotTest, EveryItemComesBackAsItWas) {
  Make();
  Fill(e(), stats_);
  const EngineStats before_stats = e().engine_stats();
  const std::map<std::string, Seen> before = Everything();
  ASSERT_EQ(before.size(), 6001u);
  EXPECT_EQ(before.at("user:5").value, "100001");

  const SaveReport saved = SaveAndRemake(Options());
  EXPECT_EQ(saved.items, before.size());
  absl::StatusOr<RestoreReport> r = RestoreSnapshot(e(), clock_, path_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->items, before.size());
  EXPECT_EQ(r->expired + r->not_stored + r->evicted, 0u);
  EXPECT_FALSE(FileExists()) << "a used file is removed";

  // Values, flags, CAS and expiry (the same moment: one clock here).
  EXPECT_EQ(Everything(), before);
  // The tiny engine's prefixes were taught back first, so prefixed keys
  // are inline again, not waiting in the overflow store to be relearned
  // (even the few stored before their prefix was learned now go inline).
  if (tiny() && !cas_on()) {
    EXPECT_EQ(before_stats.inline_items, 4000u - (KeyPrefixes::kLearnAfter - 1));
    EXPECT_EQ(e().engine_stats().inline_items, 4000u);
  } else {
    EXPECT_EQ(e().engine_stats().inline_items, before_stats.inline_items);
  }
  EXPECT_EQ(e().engine_stats().prefixes, before_stats.prefixes);
  EXPECT_EQ(e().Totals().curr_items, before.size());
}

// Filled past its first eviction (text items, then numbers: under tiny the
// slot table has grown over the whole budget), an engine still comes back
// whole: the restore itself evicts nothing.
TEST_P(SnapshotTest, AFullEngineComesBackWhole) {
  Make(Options(/*memory_mb=*/4));
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(Set("text:" + std::to_string(i), ValueFor("t", static_cast<uint64_t>(i), 20)),
              StoreResult::kStored);
  }
  for (int i = 0; e().Totals().evictions == 0; ++i) {
    ASSERT_LT(i, 10000000) << "never evicted";
    ASSERT_EQ(Set(std::to_string(i), "7"), StoreResult::kStored);
  }
  const std::map<std::string, Seen> before = Everything();
  SaveAndRemake(Options(/*memory_mb=*/4));
  absl::StatusOr<RestoreReport> r = RestoreSnapshot(e(), clock_, path_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->evicted, 0u);
  EXPECT_EQ(r->items, before.size());
  EXPECT_EQ(Everything(), before);
}

TEST_P(SnapshotTest, NewCasUniquesAreAboveTheRestoredOnes) {
  if (!cas_on()) GTEST_SKIP() << "CAS off: every unique is 0";
  Make();
  Fill(e(), stats_);
  uint64_t highest = 0;
  for (const auto& [key, seen] : Everything()) highest = std::max(highest, seen.cas);
  SaveAndRemake(Options());
  ASSERT_TRUE(RestoreSnapshot(e(), clock_, path_).ok());
  ASSERT_EQ(Set("fresh", "v"), StoreResult::kStored);
  EXPECT_GT(CasOf("fresh"), highest);
  // A gets/cas pair from before the restart still works after it.
  const uint64_t cas = CasOf("text:7");
  EXPECT_EQ(Set("text:7", "new", 0, 0, StoreMode::kCas, cas), StoreResult::kStored);
}

TEST_P(SnapshotTest, LruOrderOfEachClassIsKept) {
  Make();
  if (tiny()) GTEST_SKIP() << "the tiny table keeps no recency order";
  for (int i = 0; i < 50; ++i) ASSERT_EQ(Set("k" + std::to_string(i), "v"), StoreResult::kStored);
  auto order = [&] {
    std::vector<std::string> keys;
    for (const ClassSnapshot& c : e().SnapshotClasses()) {
      e().VisitItems(c.id, SIZE_MAX, [&](const ItemInfo& i) { keys.emplace_back(i.key); });
    }
    return keys;
  };
  const std::vector<std::string> before = order();
  ASSERT_EQ(before.size(), 50u);
  SaveAndRemake(Options());
  ASSERT_TRUE(RestoreSnapshot(e(), clock_, path_).ok());
  EXPECT_EQ(order(), before);
}

TEST_P(SnapshotTest, ItemsThatExpiredWhileStoppedAreDropped) {
  Make();
  ASSERT_EQ(Set("short", "v", 10), StoreResult::kStored);
  ASSERT_EQ(Set("long", "v", 1000), StoreResult::kStored);
  SaveAndRemake(Options());
  clock_.AdvanceForTest(20);
  absl::StatusOr<RestoreReport> r = RestoreSnapshot(e(), clock_, path_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->items, 1u);
  EXPECT_EQ(r->expired, 1u);
  EXPECT_FALSE(Get("short").has_value());
  ASSERT_TRUE(Peek("long").has_value());
  EXPECT_EQ(Peek("long")->exptime, kStart + 1000);
}

TEST_P(SnapshotTest, FlushedItemsAreNotSaved) {
  Make();
  ASSERT_EQ(Set("old", "v"), StoreResult::kStored);
  e().FlushAll(0);
  ASSERT_EQ(Set("new", "v"), StoreResult::kStored);
  EXPECT_EQ(SaveAndRemake(Options()).items, 1u);
  ASSERT_TRUE(RestoreSnapshot(e(), clock_, path_).ok());
  EXPECT_FALSE(Get("old").has_value());
  EXPECT_EQ(Get("new"), "v");
}

TEST_P(SnapshotTest, NoFileIsNotFound) {
  Make();
  EXPECT_TRUE(absl::IsNotFound(RestoreSnapshot(e(), clock_, path_).status()));
}

TEST_P(SnapshotTest, OtherSettingsStoreNothing) {
  Make();
  Fill(e(), stats_);
  SaveAndRemake(Options(/*memory_mb=*/128));
  const absl::Status s = RestoreSnapshot(e(), clock_, path_).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("memory_limit=67108864, now memory_limit=134217728"),
            absl::string_view::npos)
      << s;
  EXPECT_EQ(e().Totals().curr_items, 0u);
  EXPECT_FALSE(FileExists()) << "a refused file is removed too: a later crash must not use it";
}

// Any single changed byte, anywhere, and any truncation: DataLoss, nothing
// stored, the file gone.
TEST_P(SnapshotTest, DamagedFilesStoreNothing) {
  Make();
  Fill(e(), stats_);
  SaveAndRemake(Options());
  const std::string good = ReadFile();
  ASSERT_GT(good.size(), 700u * 1024);
  std::vector<size_t> offsets = {0,
                                 15,
                                 16,
                                 20,
                                 24,
                                 30,
                                 40,
                                 200,
                                 good.size() / 3,
                                 good.size() / 2,
                                 good.size() - 17,
                                 good.size() - 1};
  for (size_t off : offsets) {
    std::string bad = good;
    bad[off] = static_cast<char>(bad[off] ^ 0x10);
    WriteFile(bad);
    const absl::Status s = RestoreSnapshot(e(), clock_, path_).status();
    EXPECT_TRUE(absl::IsDataLoss(s)) << "byte " << off << ": " << s;
    EXPECT_EQ(e().Totals().curr_items, 0u) << "byte " << off;
    EXPECT_FALSE(FileExists());
  }
  for (size_t len : {size_t{0}, size_t{10}, size_t{24}, size_t{40}, good.size() / 2,
                     good.size() - 16, good.size() - 1}) {
    WriteFile(good.substr(0, len));
    const absl::Status s = RestoreSnapshot(e(), clock_, path_).status();
    EXPECT_TRUE(absl::IsDataLoss(s)) << "cut at " << len << ": " << s;
    EXPECT_EQ(e().Totals().curr_items, 0u) << "cut at " << len;
  }
  WriteFile(good + "x");
  EXPECT_TRUE(absl::IsDataLoss(RestoreSnapshot(e(), clock_, path_).status()));
  // And the good file, after all that, restores.
  WriteFile(good);
  absl::StatusOr<RestoreReport> r = RestoreSnapshot(e(), clock_, path_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->items, 6001u);
}

TEST_P(SnapshotTest, AnEmptyEngineRoundTrips) {
  Make();
  EXPECT_EQ(SaveAndRemake(Options()).items, 0u);
  absl::StatusOr<RestoreReport> r = RestoreSnapshot(e(), clock_, path_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->items, 0u);
}

TEST_P(SnapshotTest, AnUnwritableDirectoryIsAnError) {
  Make();
  engine_->StopMaintenance();
  const absl::StatusOr<SaveReport> r = SaveSnapshot(e(), clock_, "/nonexistent-dir/x");
  EXPECT_FALSE(r.ok());
}

INSTANTIATE_TEST_SUITE_P(Engines, SnapshotTest, ::testing::ValuesIn(kCases), CaseName);

TEST(SnapshotChecksumTest, EveryBitOfAPayloadCounts) {
  std::string payload(100, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31 + 7);
  const uint64_t sum = SnapshotChecksum(3, payload);
  EXPECT_NE(SnapshotChecksum(4, payload), sum);
  EXPECT_NE(SnapshotChecksum(3, payload.substr(0, 99)), sum);
  for (size_t bit = 0; bit < payload.size() * 8; ++bit) {
    std::string p = payload;
    p[bit / 8] = static_cast<char>(p[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_NE(SnapshotChecksum(3, p), sum) << "bit " << bit;
  }
}

}  // namespace
}  // namespace tinycached::core::engine_test
