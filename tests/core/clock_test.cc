#include "core/clock.h"

#include <cstdint>
#include <ctime>

#include "gtest/gtest.h"

namespace tinycached::core {
namespace {

TEST(ClockTest, ExptimeRules) {
  Clock clock;
  clock.SetForTest(1000);
  EXPECT_EQ(clock.ToRelative(0), 0u);   // never
  EXPECT_EQ(clock.ToRelative(-1), 1u);  // already expired
  EXPECT_EQ(clock.ToRelative(-100000000), 1u);
  EXPECT_EQ(clock.ToRelative(10), 1010u);  // relative
  EXPECT_EQ(clock.ToRelative(Clock::kMaxRelativeExptime), 1000u + Clock::kMaxRelativeExptime);
  // Above 30 days: absolute Unix time.
  const int64_t absolute = clock.StartedAt() + 5000;
  EXPECT_EQ(clock.ToRelative(absolute), 5000u);
  // Absolute but before the server started: already expired.
  EXPECT_EQ(clock.ToRelative(Clock::kMaxRelativeExptime + 1), 1u);
}

TEST(ClockTest, ExpiredIsInclusiveAndZeroIsNever) {
  Clock clock;
  clock.SetForTest(500);
  EXPECT_FALSE(clock.Expired(0));
  EXPECT_TRUE(clock.Expired(1));
  EXPECT_TRUE(clock.Expired(500));
  EXPECT_FALSE(clock.Expired(501));
  clock.AdvanceForTest(1);
  EXPECT_TRUE(clock.Expired(501));
}

TEST(ClockTest, StartsAsMemcachedDoes) {
  // The constructor reads the system time twice (the start, then the first
  // tick); however slowly it runs, both readings lie between these two.
  const int64_t before = std::time(nullptr);
  Clock clock;
  const int64_t after = std::time(nullptr);
  // memcached's relative clock starts 62 s in the past, so "now" is never 0 or 1.
  EXPECT_GE(clock.StartedAt(), before - Clock::kStartOffset);
  EXPECT_LE(clock.StartedAt(), after - Clock::kStartOffset);
  EXPECT_GE(clock.Now(), static_cast<RelTime>(Clock::kStartOffset));
  EXPECT_LE(clock.Now(), static_cast<RelTime>(Clock::kStartOffset + (after - before)));
  EXPECT_EQ(clock.UnixNow(), clock.StartedAt() + clock.Now());
}

}  // namespace
}  // namespace tinycached::core
