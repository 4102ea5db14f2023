#include "core/key_prefixes.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace tinycached::core {
namespace {

std::optional<uint32_t> Learn(KeyPrefixes& d, std::string_view p) {
  return d.Learn(p, KeyPrefixes::Hash(p));
}
std::optional<uint32_t> Find(const KeyPrefixes& d, std::string_view p) {
  return d.Find(p, KeyPrefixes::Hash(p));
}

TEST(KeyPrefixesTest, LearnsAfterRepeatedStoresAndKeepsItsId) {
  KeyPrefixes d;
  EXPECT_FALSE(Find(d, "user:").has_value());
  for (uint32_t i = 1; i < KeyPrefixes::kLearnAfter; ++i) {
    EXPECT_FALSE(Learn(d, "user:").has_value()) << i;
  }
  const std::optional<uint32_t> id = Learn(d, "user:");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(Find(d, "user:"), id);
  EXPECT_EQ(d.Prefix(*id), "user:");
  EXPECT_EQ(Learn(d, "user:"), id);  // known: the same id at once
  EXPECT_EQ(d.size(), 1u);
  EXPECT_FALSE(Find(d, "user").has_value());
  EXPECT_FALSE(Find(d, "user:x").has_value());
}

TEST(KeyPrefixesTest, OneOffPrefixesAreNotLearned) {
  KeyPrefixes d;
  for (int i = 0; i < 10000; ++i) Learn(d, "session:" + std::to_string(i) + "x");
  EXPECT_EQ(d.size(), 0u);
}

TEST(KeyPrefixesTest, FullMeansFullAndIdsNeverMove) {
  KeyPrefixes d;
  std::vector<std::string> names;
  for (size_t i = 0; i < KeyPrefixes::kMaxPrefixes + 10; ++i)
    names.push_back("p" + std::to_string(i) + ":");
  std::set<uint32_t> ids;
  for (size_t i = 0; i < names.size(); ++i) {
    std::optional<uint32_t> id;
    for (uint32_t n = 0; n < KeyPrefixes::kLearnAfter; ++n) id = Learn(d, names[i]);
    if (i < KeyPrefixes::kMaxPrefixes) {
      ASSERT_TRUE(id.has_value()) << names[i];
      EXPECT_TRUE(ids.insert(*id).second);
      EXPECT_LT(*id, KeyPrefixes::kMaxPrefixes);
    } else {
      EXPECT_FALSE(id.has_value()) << names[i];
    }
  }
  EXPECT_TRUE(d.full());
  for (size_t i = 0; i < KeyPrefixes::kMaxPrefixes; ++i) {
    const std::optional<uint32_t> id = Find(d, names[i]);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(d.Prefix(*id), names[i]);
  }
  EXPECT_FALSE(Find(d, names.back()).has_value());
}

TEST(KeyPrefixesTest, TooLongOrEmptyIsNeverLearned) {
  KeyPrefixes d;
  const std::string longest(KeyPrefixes::kMaxPrefixLength, 'a');
  const std::string too_long(KeyPrefixes::kMaxPrefixLength + 1, 'a');
  for (uint32_t n = 0; n < KeyPrefixes::kLearnAfter; ++n) {
    Learn(d, longest);
    Learn(d, too_long);
    Learn(d, "");
  }
  EXPECT_TRUE(Find(d, longest).has_value());
  EXPECT_FALSE(Find(d, too_long).has_value());
  EXPECT_EQ(d.size(), 1u);
}

TEST(KeyPrefixesTest, ReadersSeeWholeEntriesWhileOthersLearn) {
  KeyPrefixes d;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      for (int i = 0; i < 4; ++i) {
        const std::string p = "r" + std::to_string(i) + ":";
        if (std::optional<uint32_t> id = Find(d, p)) {
          ASSERT_EQ(d.Prefix(*id), p);
        }
      }
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&] {
      for (int round = 0; round < 8; ++round) {
        for (int i = 0; i < 4; ++i) Learn(d, "r" + std::to_string(i) + ":");
      }
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  reader.join();
  // 4 prefixes fit any candidate set, so interleaved stores learn them all.
  EXPECT_EQ(d.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(Find(d, "r" + std::to_string(i) + ":").has_value());
}

}  // namespace
}  // namespace tinycached::core
