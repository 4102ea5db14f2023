#include "core/tiny_store.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/key_prefixes.h"
#include "gtest/gtest.h"

namespace tinycached::core {
namespace {

class TinyStoreTest : public ::testing::Test {
 protected:
  void Make(size_t limit_mb = 64) {
    StoreOptions o;
    o.memory_limit = limit_mb << 20;
    o.engine = EngineKind::kTiny;
    o.cas_enabled = false;
    o.layout.refs = RefMode::kPage;
    o.layout.pack_keys = true;
    o.layout.header = compact::HeaderStyle::kLean;
    o.slabs.align = 1;
    o.slabs.min_space = 5;
    o.slabs.factor = 1.05;
    o.slabs.max_classes = 255;
    clock_.SetForTest(1000);
    auto e = CreateEngine(o, &clock_);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
    tiny_ = dynamic_cast<TinyStore*>(engine_.get());
    ASSERT_NE(tiny_, nullptr);
  }
  StoreResult Set(const std::string& k, const std::string& v, uint32_t flags = 0,
                  int64_t exptime = 0, StoreMode mode = StoreMode::kSet) {
    return engine_->Store(mode, k, flags, exptime, v, 0, stats_);
  }
  std::optional<std::string> Get(const std::string& k, uint32_t* flags = nullptr) {
    std::optional<std::string> out;
    engine_->Get(k, std::nullopt, stats_, [&](const ItemView& v) {
      out = std::string(v.value);
      if (flags != nullptr) *flags = v.flags;
    });
    return out;
  }
  std::string Delta(const std::string& k, bool incr, uint64_t d) {
    char buf[Engine::kDeltaMaxLength];
    size_t n = 0;
    EXPECT_EQ(engine_->Delta(k, incr, d, stats_, buf, &n), DeltaResult::kOk);
    return std::string(buf, n);
  }
  size_t Inline() const { return engine_->engine_stats().inline_items; }
  size_t Items() const { return engine_->Totals().curr_items; }

  Clock clock_;
  ThreadStats stats_;
  std::unique_ptr<Engine> engine_;
  TinyStore* tiny_ = nullptr;
};

TEST_F(TinyStoreTest, TinyItemsLiveInlineTheRestInOverflow) {
  Make();
  EXPECT_EQ(Set("1", "x"), StoreResult::kStored);
  EXPECT_EQ(Set("42", "12345678"), StoreResult::kStored);
  EXPECT_EQ(Set("key", "x"), StoreResult::kStored);           // text key
  EXPECT_EQ(Set("007", "x"), StoreResult::kStored);           // not canonical
  EXPECT_EQ(Set("8", "a long value"), StoreResult::kStored);  // value too long (> 10)
  EXPECT_EQ(Set("11", "ten bytes!"), StoreResult::kStored);   // a wide slot pair
  EXPECT_EQ(Set("9", "x", 5), StoreResult::kStored);          // flags
  EXPECT_EQ(Set("10", "x", 0, 100), StoreResult::kStored);    // expiry
  EXPECT_EQ(Inline(), 3u);
  EXPECT_EQ(Items(), 8u);
  uint32_t flags = 0;
  EXPECT_EQ(Get("1"), "x");
  EXPECT_EQ(Get("11"), "ten bytes!");
  EXPECT_EQ(Get("42"), "12345678");
  EXPECT_EQ(Get("key"), "x");
  EXPECT_EQ(Get("007"), "x");
  EXPECT_EQ(Get("8"), "a long value");
  EXPECT_EQ(Get("9", &flags), "x");
  EXPECT_EQ(flags, 5u);
  EXPECT_EQ(Get("10"), "x");
  EXPECT_EQ(Get("2"), std::nullopt);
}

TEST_F(TinyStoreTest, AKeyLivesInOnePlace) {
  Make();
  Set("5", "x");
  Set("5", "x", 3);  // to overflow
  EXPECT_EQ(Inline(), 0u);
  EXPECT_EQ(Items(), 1u);
  uint32_t flags = 0;
  EXPECT_EQ(Get("5", &flags), "x");
  EXPECT_EQ(flags, 3u);
  Set("5", "y");  // back inline
  EXPECT_EQ(Inline(), 1u);
  EXPECT_EQ(Items(), 1u);
  EXPECT_EQ(Get("5", &flags), "y");
  EXPECT_EQ(flags, 0u);
  EXPECT_TRUE(engine_->Delete("5", stats_));
  EXPECT_EQ(Get("5"), std::nullopt);
  EXPECT_FALSE(engine_->Delete("5", stats_));
  EXPECT_EQ(Items(), 0u);
}

TEST_F(TinyStoreTest, AddReplaceAppendCasFollowMemcached) {
  Make();
  EXPECT_EQ(Set("1", "a", 0, 0, StoreMode::kAdd), StoreResult::kStored);
  EXPECT_EQ(Set("1", "b", 0, 0, StoreMode::kAdd), StoreResult::kNotStored);
  Set("2", "long value");
  EXPECT_EQ(Set("2", "b", 0, 0, StoreMode::kAdd), StoreResult::kNotStored);  // in overflow
  EXPECT_EQ(Get("2"), "long value");
  EXPECT_EQ(Set("3", "c", 0, 0, StoreMode::kReplace), StoreResult::kNotStored);
  EXPECT_EQ(Set("1", "c", 0, 0, StoreMode::kReplace), StoreResult::kStored);
  EXPECT_EQ(Get("1"), "c");
  EXPECT_EQ(Set("1", "longer", 0, 0, StoreMode::kReplace), StoreResult::kStored);
  EXPECT_EQ(Get("1"), "longer");
  EXPECT_EQ(Items(), 2u);
  Set("4", "1");
  EXPECT_EQ(Set("4", "2", 0, 0, StoreMode::kAppend), StoreResult::kStored);
  EXPECT_EQ(Set("4", "0", 0, 0, StoreMode::kPrepend), StoreResult::kStored);
  EXPECT_EQ(Get("4"), "012");
  EXPECT_EQ(Set("6", "0", 0, 0, StoreMode::kAppend), StoreResult::kNotStored);
  EXPECT_EQ(Items(), 3u);
}

TEST_F(TinyStoreTest, CountersChangeInPlaceWithMemcachedsText) {
  Make();
  Set("1", "10");
  EXPECT_EQ(Delta("1", false, 1), "9");
  EXPECT_EQ(Get("1"), "9 ");  // padded to the old length, as memcached
  EXPECT_EQ(Delta("1", true, 991), "1000");
  EXPECT_EQ(Get("1"), "1000");
  EXPECT_EQ(Inline(), 1u);
  Set("2", "536870911");  // the largest number of one slot
  EXPECT_EQ(Inline(), 2u);
  EXPECT_EQ(Delta("2", true, 1), "536870912");  // two slots now, still inline
  EXPECT_EQ(Get("2"), "536870912");
  EXPECT_EQ(Inline(), 2u);
  EXPECT_EQ(tiny_->table().wide_items(), 1u);
  EXPECT_EQ(Delta("2", true, UINT64_MAX - 536870912), "18446744073709551615");
  EXPECT_EQ(Delta("2", false, UINT64_MAX - 1), "1");
  EXPECT_EQ(Get("2"), "1                   ");  // 19 spaces: memcached's decr
  EXPECT_EQ(Delta("2", true, 9), "10");
  EXPECT_EQ(Get("2"), "10                  ");
  EXPECT_EQ(Inline(), 2u);
  Set("2", "7");  // back to one slot
  EXPECT_EQ(tiny_->table().wide_items(), 0u);
  EXPECT_EQ(Get("2"), "7");
  Set("3", "5");
  EXPECT_EQ(Delta("3", true, UINT64_MAX), "4");  // wraps at 2^64
  EXPECT_EQ(Delta("3", false, 100), "0");        // stops at 0
  Set("4", "007");
  EXPECT_EQ(Delta("4", true, 1), "8");
  EXPECT_EQ(Get("4"), "8  ");
  Set("5", "x");
  char buf[Engine::kDeltaMaxLength];
  size_t n = 0;
  EXPECT_EQ(engine_->Delta("5", true, 1, stats_, buf, &n), DeltaResult::kNonNumeric);
  Set("6", "");
  EXPECT_EQ(engine_->Delta("6", true, 1, stats_, buf, &n), DeltaResult::kNonNumeric);
  EXPECT_EQ(engine_->Delta("7", true, 1, stats_, buf, &n), DeltaResult::kNotFound);
}

// ma's visitor sees the item as it is after the change: the padded text of
// an inline item, or the overflow item a result too long for the slot became.
TEST_F(TinyStoreTest, MetaDeltaShowsTheNewItemWhereverItLives) {
  Make();
  auto meta_delta = [&](const std::string& k, bool incr, uint64_t d, MetaChange change,
                        std::string* seen, size_t* size) {
    char buf[Engine::kDeltaMaxLength];
    size_t n = 0;
    EXPECT_EQ(engine_->MetaDelta(k, incr, d, MetaDeltaOptions{}, stats_, buf, &n,
                                 [&](const MetaItem& m) {
                                   *seen = std::string(m.value);
                                   *size = m.size;
                                   return change;
                                 }),
              DeltaResult::kOk);
    return std::string(buf, n);
  };
  std::string seen;
  size_t size = 0;
  Set("1", "10");
  EXPECT_EQ(meta_delta("1", false, 1, {}, &seen, &size), "9");
  EXPECT_EQ(seen, "9 ");
  EXPECT_EQ(size, sizeof(uint64_t));  // the slot
  EXPECT_EQ(Inline(), 1u);
  MetaChange expire;
  expire.exptime = clock_.Now() + 100;
  EXPECT_EQ(meta_delta("1", true, 5, expire, &seen, &size), "14");
  EXPECT_EQ(seen, "14");
  EXPECT_EQ(Inline(), 0u);  // an expiry moves it out
  EXPECT_EQ(Get("1"), "14");
  Set("2", "536870911");
  EXPECT_EQ(meta_delta("2", true, 1, {}, &seen, &size), "536870912");
  EXPECT_EQ(seen, "536870912");
  EXPECT_EQ(size, 2 * sizeof(uint64_t));  // a wide pair of slots
  EXPECT_EQ(Inline(), 1u);
  // A 15-digit key's code holds numbers below 2^19: beyond, the overflow item.
  Set("123456789012345", "524287");
  EXPECT_EQ(Inline(), 2u);
  EXPECT_EQ(meta_delta("123456789012345", true, 1, {}, &seen, &size), "524288");
  EXPECT_EQ(seen, "524288");
  EXPECT_GT(size, 2 * sizeof(uint64_t));  // no longer fits: the overflow item
  EXPECT_EQ(Inline(), 1u);
  EXPECT_EQ(Get("123456789012345"), "524288");
}

TEST_F(TinyStoreTest, ExpiryMovesAnItemOut) {
  Make();
  Set("1", "x");
  EXPECT_EQ(engine_->Touch("1", 0, stats_), TouchResult::kTouched);
  EXPECT_EQ(Inline(), 1u);
  EXPECT_EQ(engine_->Touch("1", 10, stats_), TouchResult::kTouched);
  EXPECT_EQ(Inline(), 0u);
  EXPECT_EQ(Get("1"), "x");
  clock_.AdvanceForTest(11);
  EXPECT_EQ(Get("1"), std::nullopt);
  Set("2", "y");
  std::optional<std::string> got;
  engine_->Get("2", int64_t{10}, stats_, [&](const ItemView& v) { got = std::string(v.value); });
  EXPECT_EQ(got, "y");
  clock_.AdvanceForTest(11);
  EXPECT_EQ(Get("2"), std::nullopt);
}

TEST_F(TinyStoreTest, FlushAllNowAndDelayed) {
  Make();
  Set("1", "x");
  Set("a", "x");
  engine_->FlushAll(0);
  EXPECT_EQ(Get("1"), std::nullopt);
  EXPECT_EQ(Get("a"), std::nullopt);
  Set("2", "x");
  engine_->FlushAll(5);
  EXPECT_EQ(Get("2"), "x");
  clock_.AdvanceForTest(6);
  EXPECT_EQ(Get("2"), std::nullopt);
  EXPECT_EQ(Inline(), 0u);
}

TEST_F(TinyStoreTest, MinusMHoldsEverythingAndMemoryMovesBothWays) {
  Make(8);
  // Tiny items take every page of the budget...
  uint64_t k = 1;
  while (engine_->engine_stats().inline_evictions == 0) {
    ASSERT_EQ(Set(std::to_string(k++), "x"), StoreResult::kStored);
  }
  const size_t tiny_pages = tiny_->table().pages();
  EXPECT_GE(tiny_pages, 7u);
  EXPECT_GT(Inline(), 7u * 131072 * 9 / 10);
  EXPECT_LE(engine_->Totals().malloced, size_t{8} << 20);
  // ...then 300-byte items are stored, every one: the table gives pages back.
  const std::string big(300, 'v');
  for (int i = 0; i < 12000; ++i) {
    ASSERT_EQ(Set("big" + std::to_string(i), big), StoreResult::kStored) << i;
  }
  EXPECT_LT(tiny_->table().pages(), tiny_pages);
  EXPECT_EQ(Get("big11999"), big);
  EXPECT_LE(engine_->Totals().malloced, size_t{8} << 20);
  // And tiny items that keep coming win pages back from the stale big ones.
  const size_t low = tiny_->table().pages();
  for (uint64_t j = 0; j < 100000; ++j) Set(std::to_string(10000000 + j), "y");
  EXPECT_GT(tiny_->table().pages(), low);
  EXPECT_LE(engine_->Totals().malloced, size_t{8} << 20);
}

TEST_F(TinyStoreTest, AFilledTableGivesItsPagesToTextKeysThatKeepMissing) {
  // The size shift (experiments/shift.py) in small: tiny items fill -m, then a
  // read-through client moves to 15000 text-keyed 300-byte items (4.5 MB,
  // fits in 8). The table gets no more sets and so never evicts; the
  // overflow store evicts on every miss. Pages must flow to it.
  Make(8);
  uint64_t k = 1;
  while (engine_->engine_stats().inline_evictions == 0) Set(std::to_string(k++), "x");
  const size_t full = tiny_->table().pages();
  const std::string big(300, 'v');
  auto pass = [&] {
    int hits = 0;
    for (int i = 0; i < 15000; ++i) {
      const std::string key = "k" + std::to_string(i);
      if (Get(key) == big) {
        ++hits;
      } else {
        Set(key, big);
      }
    }
    return hits;
  };
  for (int round = 0; round < 12; ++round) pass();
  EXPECT_GT(pass(), 15000 * 9 / 10);
  EXPECT_LT(tiny_->table().pages(), full);
  EXPECT_LE(engine_->Totals().malloced, size_t{8} << 20);
}

TEST_F(TinyStoreTest, TheOverflowIndexIsPaidFromTheLimit) {
  Make(8);
  const size_t index = tiny_->overflow().index().bytes();
  EXPECT_GT(index, 0u);
  EXPECT_EQ(engine_->Totals().malloced, index);  // nothing stored yet
  for (int i = 0; i < 200000; ++i) Set("key:" + std::to_string(i), "value");
  engine_->ReclaimDead(100);
  EXPECT_GE(engine_->Totals().malloced, tiny_->overflow().index().bytes());
  EXPECT_LE(engine_->Totals().malloced, size_t{8} << 20);
  EXPECT_GT(engine_->Totals().curr_items, 0u);
}

TEST_F(TinyStoreTest, VisitItemsShowsInlineItemsAsClassZero) {
  Make();
  ASSERT_EQ(Set("42", "7"), StoreResult::kStored);
  ASSERT_EQ(Set("43", "abc"), StoreResult::kStored);
  ASSERT_EQ(Set("text", "x"), StoreResult::kStored);
  ASSERT_EQ(Inline(), 2u);
  std::vector<std::pair<std::string, size_t>> inline_items;
  EXPECT_EQ(engine_->VisitItems(0, 100,
                                [&](const ItemInfo& i) {
                                  EXPECT_EQ(i.cls, 0);
                                  EXPECT_EQ(i.exptime, 0u);
                                  inline_items.emplace_back(std::string(i.key), i.value_bytes);
                                }),
            2u);
  std::sort(inline_items.begin(), inline_items.end());
  EXPECT_EQ(inline_items, (std::vector<std::pair<std::string, size_t>>{{"42", 1}, {"43", 3}}));
  EXPECT_EQ(engine_->VisitItems(0, 1, [](const ItemInfo&) {}), 1u);
  size_t overflow = 0;
  for (int cls = 1; cls <= static_cast<int>(engine_->layout_report().classes.size()); ++cls) {
    overflow += engine_->VisitItems(cls, 100, [](const ItemInfo& i) { EXPECT_EQ(i.key, "text"); });
  }
  EXPECT_EQ(overflow, 1u);
  engine_->SetMemoryLimit(size_t{16} << 20);
  EXPECT_EQ(engine_->memory_limit(), size_t{16} << 20);
}

TEST_F(TinyStoreTest, PrefixedKeysGoInlineOnceTheirPrefixIsLearned) {
  Make();
  // Before the prefix is learned its keys are text keys, in overflow.
  for (uint32_t i = 1; i < KeyPrefixes::kLearnAfter; ++i) {
    ASSERT_EQ(Set("user:" + std::to_string(i), "x"), StoreResult::kStored);
  }
  EXPECT_EQ(Inline(), 0u);
  EXPECT_EQ(tiny_->prefixes().size(), 0u);
  // The next store that could go inline teaches it, and goes inline itself.
  ASSERT_EQ(Set("user:100", "7"), StoreResult::kStored);
  EXPECT_EQ(tiny_->prefixes().size(), 1u);
  EXPECT_EQ(Inline(), 1u);
  // An old overflow copy moves inline at its next store; either way every
  // key reads back byte for byte, and lives in one place.
  EXPECT_EQ(Get("user:1"), "x");
  ASSERT_EQ(Set("user:1", "12345678"), StoreResult::kStored);
  EXPECT_EQ(Inline(), 2u);
  EXPECT_EQ(Items(), size_t{KeyPrefixes::kLearnAfter});
  EXPECT_EQ(Get("user:1"), "12345678");
  EXPECT_EQ(Get("user:2"), "x");
  EXPECT_EQ(Get("user:100"), "7");
  EXPECT_EQ(Get("user:3x"), std::nullopt);
  EXPECT_EQ(Get("user:01"), std::nullopt);
  EXPECT_EQ(Get("user:101"), std::nullopt);
  EXPECT_EQ(Get("user100"), std::nullopt);  // another prefix
  // Non-canonical numbers behind a known prefix are text keys.
  ASSERT_EQ(Set("user:007", "x"), StoreResult::kStored);
  EXPECT_EQ(Inline(), 2u);
  EXPECT_EQ(Get("user:007"), "x");
  EXPECT_EQ(Get("user:7"), std::nullopt);
  // Counters in place, with memcached's text.
  EXPECT_EQ(Delta("user:100", true, 5), "12");
  EXPECT_EQ(Delta("user:100", false, 3), "9");
  EXPECT_EQ(Get("user:100"), "9 ");
  EXPECT_EQ(Inline(), 2u);
  // Deleting, and shapes the slot cannot hold (flags) move it out.
  EXPECT_TRUE(engine_->Delete("user:2", stats_));
  EXPECT_EQ(Get("user:2"), std::nullopt);
  ASSERT_EQ(Set("user:1", "x", 9), StoreResult::kStored);
  EXPECT_EQ(Inline(), 1u);
  uint32_t flags = 0;
  EXPECT_EQ(Get("user:1", &flags), "x");
  EXPECT_EQ(flags, 9u);
  EXPECT_GT(stats_.prefix_hits.Get(), 0u);
  EXPECT_GT(stats_.prefix_misses.Get(), 0u);
}

TEST_F(TinyStoreTest, PrefixesNeverChangeWhichItemAKeyNames) {
  Make();
  // Many prefixes sharing numbers, and numbers in both prefixed classes.
  std::vector<std::string> keys;
  for (int p = 0; p < 40; ++p) {
    const std::string prefix = "p" + std::to_string(p) + (p % 2 == 0 ? ":" : ":x:");
    for (uint64_t n :
         {uint64_t{0}, uint64_t{1}, uint64_t{4294967295}, uint64_t{4294967296},
          uint64_t{999999999999999}, uint64_t{1125899906842623}, uint64_t{1125899906842624}}) {
      keys.push_back(prefix + std::to_string(n));
    }
  }
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSERT_EQ(Set(keys[i], std::to_string(i % 200)), StoreResult::kStored);
    }
  }
  EXPECT_EQ(tiny_->prefixes().size(), 40u);
  // 2^50 behind a prefix has no class: those are the only overflow items.
  EXPECT_EQ(Items(), keys.size());
  EXPECT_EQ(Inline(), keys.size() - 40);
  for (size_t i = 0; i < keys.size(); ++i)
    EXPECT_EQ(Get(keys[i]), std::to_string(i % 200)) << keys[i];
  // Every inline item's key comes back byte for byte.
  std::vector<std::string> seen;
  engine_->VisitItems(0, SIZE_MAX, [&](const ItemInfo& i) { seen.emplace_back(i.key); });
  EXPECT_EQ(seen.size(), Inline());
  for (const std::string& k : seen) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
  }
}

TEST_F(TinyStoreTest, LongIdsLiveInlineWithTheValuesTheirClassHolds) {
  Make();
  // 15-digit ids: up to 2-byte values and numbers below 2^19.
  EXPECT_EQ(Set("123456789012345", "x"), StoreResult::kStored);
  EXPECT_EQ(Set("123456789012346", "524287"), StoreResult::kStored);
  EXPECT_EQ(Set("123456789012347", "abc"), StoreResult::kStored);  // 3 bytes: overflow
  // 19-digit (snowflake) ids below 2^61: 1 byte, numbers to 255.
  EXPECT_EQ(Set("1800000000000000001", "1"), StoreResult::kStored);
  EXPECT_EQ(Set("1800000000000000002", "256"), StoreResult::kStored);  // overflow
  EXPECT_EQ(Set("18446744073709551615", "x"), StoreResult::kStored);   // above 2^61: two slots
  EXPECT_EQ(Set("18446744073709551614", "abcdefgh"), StoreResult::kStored);  // 8 bytes: overflow
  EXPECT_EQ(Inline(), 4u);
  EXPECT_EQ(Items(), 7u);
  EXPECT_EQ(tiny_->table().wide_items(), 1u);
  EXPECT_EQ(Get("18446744073709551614"), "abcdefgh");
  EXPECT_EQ(Get("123456789012345"), "x");
  EXPECT_EQ(Get("123456789012346"), "524287");
  EXPECT_EQ(Get("123456789012347"), "abc");
  EXPECT_EQ(Get("1800000000000000001"), "1");
  EXPECT_EQ(Get("1800000000000000002"), "256");
  EXPECT_EQ(Get("18446744073709551615"), "x");
  // A counter that outgrows its class's code moves out, with memcached's text.
  EXPECT_EQ(Delta("1800000000000000001", true, 254), "255");
  EXPECT_EQ(Inline(), 4u);
  EXPECT_EQ(Delta("1800000000000000001", true, 1), "256");
  EXPECT_EQ(Inline(), 3u);
  // Above 2^61 a counter goes to 2^64 - 1 in its two slots.
  EXPECT_EQ(Set("10000000000000000000", "18446744073709551614"), StoreResult::kStored);
  EXPECT_EQ(Delta("10000000000000000000", true, 1), "18446744073709551615");
  EXPECT_EQ(Delta("10000000000000000000", false, 18446744073709551610ULL), "5");
  EXPECT_EQ(Get("10000000000000000000"),
            "5                   ");  // 19 spaces: outgrew 7, moved out
  EXPECT_EQ(Inline(), 3u);
  EXPECT_EQ(Get("1800000000000000001"), "256");
  EXPECT_EQ(Delta("1800000000000000001", false, 250), "6");
  EXPECT_EQ(Get("1800000000000000001"), "6  ");
}

}  // namespace
}  // namespace tinycached::core
