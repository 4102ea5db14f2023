#include "compact/item_layout.h"

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace tinycached::compact {
namespace {

size_t Size(const ItemLayout& l, std::string_view key, uint32_t flags, size_t nvalue,
            uint32_t exptime = 0) {
  const StoredKey k(key, l.pack_keys());
  return l.ItemSize(k.bytes().size(), flags, nvalue, exptime);
}

TEST(ItemLayoutTest, StockIsMemcachedsFormula) {
  const ItemLayout cas = ItemLayout::Stock(true), nocas = ItemLayout::Stock(false);
  EXPECT_EQ(cas.header_size(), 48u);
  // 48 header + 8 cas + key+1 + value+2: memcached 1.6 reports 61 bytes for a/x.
  EXPECT_EQ(Size(cas, "a", 0, 1), 61u);
  EXPECT_EQ(Size(nocas, "a", 0, 1), 53u);
  // Client flags cost 4 bytes only when non-zero; the stock exptime is always there.
  EXPECT_EQ(Size(cas, "a", 7, 1), 65u);
  EXPECT_EQ(Size(cas, "a", 0, 1, 100), 61u);
  EXPECT_EQ(Size(cas, "123456", 0, 1), 66u);
  EXPECT_EQ(Size(cas, std::string(250, 'k'), 0, 1000), 48u + 8 + 251 + 1002);
}

TEST(ItemLayoutTest, StockHeaderShrinksWithReferenceWidth) {
  LayoutOptions o;
  o.refs = RefCodec::Page(2, nullptr);  // 4-byte references: a 32-bit build's header
  EXPECT_EQ(ItemLayout(o).header_size(), 32u);
  o.refs = RefCodec::Page(1, nullptr);  // 3-byte: 27 bytes of fields, padded to 4
  EXPECT_EQ(ItemLayout(o).header_size(), 28u);
  o.header = HeaderStyle::kLean;  // 9 of links, flags, nkey
  EXPECT_EQ(ItemLayout(o).header_size(), 11u);
}

TEST(ItemLayoutTest, LeanStoresOnlyWhatIsUsed) {
  LayoutOptions o;
  o.refs = RefCodec::Page(1, nullptr);
  o.header = HeaderStyle::kLean;
  o.cas = false;
  o.pack_keys = true;
  const ItemLayout l(o);
  // The fill experiment's item: 9 links + flags + nkey + vlen + 3 key + 1 value.
  EXPECT_EQ(Size(l, "1234567", 0, 1), 16u);
  EXPECT_EQ(Size(l, "1234567", 5, 1), 20u);     // client flags present
  EXPECT_EQ(Size(l, "1234567", 0, 1, 9), 20u);  // exptime present
  EXPECT_EQ(Size(l, "1234567", 0, 200), 216u);  // a two-byte value length
  EXPECT_EQ(Size(l, "abc", 0, 1), 16u);         // a text key costs its length
  // A 32-digit hex key (md5): a tag and 16 bytes; a UUID: the same.
  EXPECT_EQ(Size(l, "d41d8cd98f00b204e9800998ecf8427e", 0, 1), 30u);
  EXPECT_EQ(Size(l, "123e4567-e89b-12d3-a456-426614174000", 0, 1), 30u);
  EXPECT_EQ(Size(l, "D41D8Cd98f00b204e9800998ecf8427e", 0, 1), 45u);  // mixed case: text
  o.cas = true;
  EXPECT_EQ(Size(ItemLayout(o), "1234567", 0, 1), 24u);
}

TEST(ItemLayoutTest, VarintRoundTrips) {
  for (size_t v : {size_t{0}, size_t{1}, size_t{127}, size_t{128}, size_t{16383}, size_t{16384},
                   size_t{1} << 20, (size_t{1} << 30) + 5}) {
    uint8_t buf[10] = {};
    const size_t n = ItemLayout::PutVarint(buf, v);
    EXPECT_EQ(n, ItemLayout::VarintSize(v)) << v;
    size_t back = 0;
    EXPECT_EQ(ItemLayout::GetVarint(buf, &back), n);
    EXPECT_EQ(back, v);
  }
}

// A small arena of 4 KiB pages, so page references can be exercised
// without the allocator: page 0 has 64-byte chunks, page 1 has 100-byte.
class FakeArena {
 public:
  FakeArena() : mem_(4 * 4096 + 4096) {
    auto addr = reinterpret_cast<uintptr_t>(mem_.data());
    arena_.base = reinterpret_cast<uint8_t*>((addr + 4095) & ~uintptr_t{4095});
    arena_.page_shift = 12;
    arena_.chunk_size = sizes_;
  }
  const Arena* arena() const { return &arena_; }
  uint8_t* Chunk(int page, int chunk) {
    return arena_.base + (size_t(page) << 12) + size_t(chunk) * sizes_[page];
  }

 private:
  std::vector<uint8_t> mem_;
  uint32_t sizes_[4] = {64, 100, 4096, 4096};
  Arena arena_;
};

// (header lean?, refs: 0 pointer / 1 / 2 page bytes, cas, pack keys)
using Knobs = std::tuple<bool, int, bool, bool>;

class ItemLayoutRoundTrip : public ::testing::TestWithParam<Knobs> {
 protected:
  ItemLayout Make() {
    const auto [lean, page_bytes, cas, pack] = GetParam();
    LayoutOptions o;
    o.header = lean ? HeaderStyle::kLean : HeaderStyle::kStock;
    o.refs = page_bytes == 0 ? RefCodec::Pointer() : RefCodec::Page(page_bytes, arena_.arena());
    o.cas = cas;
    o.pack_keys = pack;
    return ItemLayout(o);
  }
  FakeArena arena_;
};

TEST_P(ItemLayoutRoundTrip, EveryFieldReadsBackAndNothingSpills) {
  const ItemLayout l = Make();
  struct Case {
    std::string key;
    uint32_t flags, exptime;
    std::string value;
    uint8_t state = 0;  // MetaState bits, in the expiry word's top bits
  };
  const std::vector<Case> cases = {
      {"1234567", 0, 0, "x"},
      {"0", 42, 77, ""},
      {"01", 0, 5, "leading zero stays text"},
      {"18446744073709551615", 0xFFFFFFFF, 0, std::string(300, 'v')},
      {"18446744073709551616", 1, 1, "too big to pack"},
      {std::string(250, 'k'), 0, 0, std::string(3000, '\0')},
      {"key with\tbytes", 1, kExptimeMask, "binary\r\n\0value"},
      // A meta state without an expiry still takes the field; with the
      // largest expiry the two do not overlap.
      {"stale", 0, 0, "s", kMetaStale},
      {"12", 0, kExptimeMask, "w", kMetaWinSent | kMetaBinaryKey | kMetaStale},
      // Hex and UUID keys: packed to their bytes when keys are packed.
      {"d41d8cd98f00b204e9800998ecf8427e", 3, 0, "md5"},
      {"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", 0, 60, "sha1"},
      {"abc12", 0, 0, "odd"},
      {"ABC12", 9, 9, "ODD"},
      {"0123", 0, 0, ""},
      {"123e4567-e89b-12d3-a456-426614174000", 0, 0, "uuid", kMetaStale},
      {"123E4567-E89B-12D3-A456-426614174000", 1, 2, "UUID"},
      {"123E4567-e89b-12d3-a456-426614174000", 0, 0, "mixed case stays text"},
      {"123e4567-e89b-12d3-a4564-26614174000", 0, 0, "a dash moved stays text"},
      {"0xdeadbeef", 0, 0, "0x stays text"},
      {std::string(250, 'e'), 0, 0, std::string(700, 'h')},
      {std::string(249, 'E'), 5, 0, "249"},
  };
  for (const Case& c : cases) {
    const StoredKey key(c.key, l.pack_keys());
    const uint32_t word = ExptimeWord(c.exptime, c.state);
    const size_t size = l.ItemSize(key.bytes().size(), c.flags, c.value.size(), word);
    std::vector<uint8_t> buf(size + 16, 0xAB);
    uint8_t* it = buf.data();
    ItemMeta m;
    m.class_id = 17;
    m.flags = kLarge;
    m.client_flags = c.flags;
    m.time = 1234;
    m.exptime = c.exptime;
    m.state = c.state;
    l.Init(it, m, key, c.value.size(), c.value.data());
    l.SetCas(it, 0x0102030405060708ull);

    char text[kMaxKeyLength];
    EXPECT_EQ(l.Key(it, text), c.key);
    EXPECT_TRUE(l.KeyMatches(it, key));
    EXPECT_EQ(l.KeyPacked(it), key.packed());
    if (!l.pack_keys()) {
      EXPECT_EQ(l.StoredKeyBytes(it), c.key);
    }
    EXPECT_EQ(l.Value(it), c.value);
    EXPECT_EQ(l.ClientFlags(it), c.flags);
    EXPECT_EQ(l.Cas(it), l.cas_enabled() ? 0x0102030405060708ull : 0u);
    EXPECT_EQ(l.Time(it), l.has_time() ? 1234u : 0u);
    EXPECT_EQ(l.Exptime(it), c.exptime);
    EXPECT_EQ(l.State(it), c.state);
    EXPECT_NE(l.Flags(it) & kLarge, 0);
    EXPECT_EQ(l.TotalSize(it), size);
    EXPECT_EQ(l.Next(it), nullptr);
    EXPECT_EQ(l.Prev(it), nullptr);
    EXPECT_EQ(l.HashNext(it), nullptr);
    // An existing expiry field can always be rewritten; a missing one only to 0.
    const bool has_field = !l.lean() || word != 0;
    EXPECT_EQ(l.SetExptime(it, 99), has_field);
    EXPECT_EQ(l.Exptime(it), has_field ? 99u : 0u);
    EXPECT_EQ(l.State(it), c.state);  // the expiry leaves the state alone
    if (has_field) {
      EXPECT_TRUE(l.SetState(it, kMetaWinSent));
      EXPECT_EQ(l.Exptime(it), 99u);  // and the state the expiry
      EXPECT_EQ(l.State(it), kMetaWinSent);
      EXPECT_TRUE(l.SetState(it, c.state));
    } else {
      EXPECT_FALSE(l.SetState(it, kMetaStale));  // no room: the caller rewrites
      EXPECT_EQ(l.State(it), 0);
    }
    EXPECT_TRUE(l.SetExptime(it, c.exptime));
    EXPECT_EQ(l.Value(it), c.value);  // untouched by metadata writes
    EXPECT_EQ(l.Cas(it), l.cas_enabled() ? 0x0102030405060708ull : 0u);
    if (!l.lean()) {  // memcached's own bytes: "\r\n" after the value
      const uint8_t* v = l.ValuePtr(it);
      EXPECT_EQ(v[c.value.size()], '\r');
      EXPECT_EQ(v[c.value.size() + 1], '\n');
    }
    for (size_t i = size; i < buf.size(); ++i) ASSERT_EQ(buf[i], 0xAB) << c.key << " " << i;
  }
}

TEST_P(ItemLayoutRoundTrip, LinksNameChunksAndLeaveThePayloadAlone) {
  const ItemLayout l = Make();
  uint8_t* a = arena_.Chunk(0, 3);
  uint8_t* b = arena_.Chunk(1, 7);
  uint8_t* c = arena_.Chunk(0, 0);
  const StoredKey key("77", l.pack_keys());
  ASSERT_LE(l.ItemSize(key.bytes().size(), 0, 1, 0), 64u);
  l.Init(a, ItemMeta{}, key, 1, "x");
  l.SetNext(a, b);
  l.SetPrev(a, c);
  l.SetHashNext(a, a);
  EXPECT_EQ(l.Next(a), b);
  EXPECT_EQ(l.Prev(a), c);
  EXPECT_EQ(l.HashNext(a), a);
  l.SetNext(a, nullptr);
  EXPECT_EQ(l.Next(a), nullptr);
  EXPECT_EQ(l.Prev(a), c);
  char text[kMaxKeyLength];
  EXPECT_EQ(l.Key(a, text), "77");
  EXPECT_EQ(l.Value(a), "x");
}

INSTANTIATE_TEST_SUITE_P(AllKnobs, ItemLayoutRoundTrip,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(0, 1, 2),
                                            ::testing::Bool(), ::testing::Bool()));

}  // namespace
}  // namespace tinycached::compact
