// server/protocol/base64.h — the base64 of meta commands' `b` flag.
//
// Room: pure encoding (RFC 4648 alphabet, '=' padding), no state. Decoding
// follows memcached 1.6.18's rules, which a client may lean on: characters
// outside the alphabet are skipped, the alphabet characters (padding
// included) must come in whole groups of four, and decoding stops after
// the first group that holds padding.
#ifndef TINYCACHED_SERVER_PROTOCOL_BASE64_H_
#define TINYCACHED_SERVER_PROTOCOL_BASE64_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tinycached::protocol {

inline constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Appends the base64 text of `in`.
inline void AppendBase64(std::string* out, std::string_view in) {
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16 |
                       static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8 |
                       static_cast<uint8_t>(in[i + 2]);
    out->push_back(kBase64Alphabet[v >> 18]);
    out->push_back(kBase64Alphabet[(v >> 12) & 63]);
    out->push_back(kBase64Alphabet[(v >> 6) & 63]);
    out->push_back(kBase64Alphabet[v & 63]);
  }
  const size_t left = in.size() - i;
  if (left == 0) return;
  uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16;
  if (left == 2) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8;
  out->push_back(kBase64Alphabet[v >> 18]);
  out->push_back(kBase64Alphabet[(v >> 12) & 63]);
  out->push_back(left == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=');
  out->push_back('=');
}

// The 6-bit value of an alphabet character, 64 for '=', -1 for others.
inline int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  if (c == '=') return 64;
  return -1;
}

// Decodes `in` into `out` (replacing it). False — memcached's "error
// decoding key" — when it holds no alphabet characters, not a multiple of
// four of them, or padding in a place that leaves no byte.
inline bool DecodeBase64(std::string_view in, std::string* out) {
  out->clear();
  size_t count = 0;
  for (char c : in) count += Base64Value(c) >= 0 ? 1 : 0;
  if (count == 0 || count % 4 != 0) return false;
  int group[4];
  int n = 0, pad = 0;
  for (char c : in) {
    const int v = Base64Value(c);
    if (v < 0) continue;
    if (v == 64) ++pad;
    group[n++] = v == 64 ? 0 : v;
    if (n < 4) continue;
    const uint32_t bits = static_cast<uint32_t>(group[0]) << 18 |
                          static_cast<uint32_t>(group[1]) << 12 |
                          static_cast<uint32_t>(group[2]) << 6 | static_cast<uint32_t>(group[3]);
    out->push_back(static_cast<char>(bits >> 16));
    out->push_back(static_cast<char>((bits >> 8) & 0xff));
    out->push_back(static_cast<char>(bits & 0xff));
    n = 0;
    if (pad > 0) {
      if (pad > 2) return false;
      out->resize(out->size() - static_cast<size_t>(pad));
      break;
    }
  }
  return !out->empty();
}

}  // namespace tinycached::protocol

#endif  // TINYCACHED_SERVER_PROTOCOL_BASE64_H_
