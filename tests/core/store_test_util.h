// tests/core/store_test_util.h — the store fixture that the core tests share:
// every store test runs under each item layout.
#ifndef TINYCACHED_TESTS_CORE_STORE_TEST_UTIL_H_
#define TINYCACHED_TESTS_CORE_STORE_TEST_UTIL_H_

#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "core/item_store.h"
#include "gtest/gtest.h"

namespace tinycached::core {

// The layouts; CAS and sizes stay the test's own.
struct LayoutCase {
  const char* name;
  LayoutKnobs knobs;
  size_t align;
};

inline void PrintTo(const LayoutCase& c, std::ostream* os) { *os << c.name; }

inline LayoutKnobs Knobs(RefMode refs, bool pack, compact::HeaderStyle header) {
  LayoutKnobs k;
  k.refs = refs;
  k.pack_keys = pack;
  k.header = header;
  return k;
}

inline const LayoutCase kLayouts[] = {
    {"stock", {}, 8},
    {"ref32", Knobs(RefMode::kRef32, false, compact::HeaderStyle::kStock), 2},
    {"page16_base250", Knobs(RefMode::kPage, true, compact::HeaderStyle::kStock), 2},
    {"lean_pointer", Knobs(RefMode::kPointer, false, compact::HeaderStyle::kLean), 8},
    {"compact", Knobs(RefMode::kPage, true, compact::HeaderStyle::kLean), 1},
};

class StoreTest : public ::testing::TestWithParam<LayoutCase> {
 protected:
  bool stock() const { return std::string(GetParam().name) == "stock"; }

  void Make(StoreOptions o = {}) {
    o.layout = GetParam().knobs;
    o.slabs.align = GetParam().align;
    clock_.SetForTest(1000);
    auto s = ItemStore::Create(o, &clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  StoreResult Set(const std::string& k, const std::string& v, int64_t exptime = 0,
                  uint32_t flags = 0, StoreMode mode = StoreMode::kSet, uint64_t cas = 0) {
    return store_->Store(mode, k, flags, exptime, v, cas, stats_);
  }

  std::optional<std::string> Get(const std::string& k, uint32_t* flags = nullptr,
                                 uint64_t* cas = nullptr) {
    std::optional<std::string> out;
    store_->Get(k, std::nullopt, stats_, [&](const ItemView& v) {
      out = std::string(v.value);
      if (flags) *flags = v.flags;
      if (cas) *cas = v.cas;
    });
    return out;
  }

  std::string Delta(const std::string& k, bool incr, uint64_t d,
                    DeltaResult want = DeltaResult::kOk) {
    char buf[ItemStore::kDeltaMaxLength];
    size_t n = 0;
    EXPECT_EQ(store_->Delta(k, incr, d, stats_, buf, &n), want);
    return std::string(buf, want == DeltaResult::kOk ? n : 0);
  }

  // Chunks in a page of class 1, which holds every small test item here.
  int PerPage1() const { return static_cast<int>(store_->classes().PerPage(1)); }

  Clock clock_;
  ThreadStats stats_;
  std::unique_ptr<ItemStore> store_;
};

inline std::string LayoutName(const ::testing::TestParamInfo<LayoutCase>& i) {
  return std::string(i.param.name);
}

}  // namespace tinycached::core

#endif  // TINYCACHED_TESTS_CORE_STORE_TEST_UTIL_H_
