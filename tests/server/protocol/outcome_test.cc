#include "server/protocol/outcome.h"

#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace tinycached::protocol {
namespace {

bool IsErrorLine(std::string_view text) {
  return text.substr(0, 13) == "SERVER_ERROR " || text.substr(0, 13) == "CLIENT_ERROR ";
}

// The rules every row keeps: the nominal result is the only binary success;
// an error line has no meta code (meta sends the line) and a non-error has
// a two-letter one.
void ExpectConsistent(const Outcome& o) {
  EXPECT_EQ(o.ok, o.binary == binary::kSuccess) << o.text;
  if (IsErrorLine(o.text)) {
    EXPECT_TRUE(o.meta.empty()) << o.text;
    EXPECT_FALSE(o.ok) << o.text;
  } else {
    EXPECT_EQ(o.meta.size(), 2u) << o.text;
  }
}

TEST(OutcomeTest, EveryRowIsConsistent) {
  using core::StoreResult;
  for (StoreResult r : {StoreResult::kStored, StoreResult::kNotStored, StoreResult::kExists,
                        StoreResult::kNotFound, StoreResult::kTooLarge, StoreResult::kNoMemory}) {
    ExpectConsistent(OutcomeOf(r));
  }
  using core::DeltaResult;
  for (DeltaResult r : {DeltaResult::kOk, DeltaResult::kNotFound, DeltaResult::kNonNumeric,
                        DeltaResult::kNoMemory, DeltaResult::kExists, DeltaResult::kNotStored}) {
    ExpectConsistent(OutcomeOf(r));
  }
  using core::MetaDeleteResult;
  for (MetaDeleteResult r : {MetaDeleteResult::kDeleted, MetaDeleteResult::kNotFound,
                             MetaDeleteResult::kExists, MetaDeleteResult::kNoMemory}) {
    ExpectConsistent(OutcomeOf(r));
  }
  using core::TouchResult;
  for (TouchResult r : {TouchResult::kTouched, TouchResult::kNotFound, TouchResult::kNoMemory}) {
    ExpectConsistent(OutcomeOf(r));
  }
}

// The same result reads the same in every protocol (memcached 1.6.18's words).
TEST(OutcomeTest, ProtocolsAgree) {
  const Outcome exists = OutcomeOf(core::StoreResult::kExists);
  EXPECT_EQ(exists.text, "EXISTS");
  EXPECT_EQ(exists.meta, "EX");
  EXPECT_EQ(exists.binary, binary::kKeyExists);
  EXPECT_EQ(OutcomeOf(core::DeltaResult::kExists).meta, exists.meta);
  EXPECT_EQ(OutcomeOf(core::MetaDeleteResult::kExists).binary, exists.binary);

  const Outcome not_found = OutcomeOf(core::MetaDeleteResult::kNotFound);
  EXPECT_EQ(not_found.text, "NOT_FOUND");
  EXPECT_EQ(not_found.meta, "NF");
  EXPECT_EQ(not_found.binary, binary::kKeyNotFound);
  for (const Outcome& o : std::vector<Outcome>{OutcomeOf(core::StoreResult::kNotFound),
                                               OutcomeOf(core::DeltaResult::kNotFound),
                                               OutcomeOf(core::TouchResult::kNotFound)}) {
    EXPECT_EQ(o.text, not_found.text);
    EXPECT_EQ(o.meta, not_found.meta);
    EXPECT_EQ(o.binary, not_found.binary);
  }

  EXPECT_EQ(OutcomeOf(core::StoreResult::kStored).text, "STORED");
  EXPECT_EQ(OutcomeOf(core::MetaDeleteResult::kDeleted).text, "DELETED");
  EXPECT_EQ(OutcomeOf(core::TouchResult::kTouched).text, "TOUCHED");
  EXPECT_EQ(OutcomeOf(core::StoreResult::kNotStored).meta, "NS");
  EXPECT_EQ(OutcomeOf(core::StoreResult::kNoMemory).text,
            "SERVER_ERROR out of memory storing object");
  EXPECT_EQ(OutcomeOf(core::DeltaResult::kNoMemory).text, "SERVER_ERROR out of memory");
  EXPECT_EQ(OutcomeOf(core::DeltaResult::kNonNumeric).binary, binary::kNonNumeric);
  EXPECT_EQ(OutcomeOf(core::StoreResult::kTooLarge).binary, binary::kTooLarge);
}

}  // namespace
}  // namespace tinycached::protocol
