// server/protocol/ascii.h — memcached's text protocol: tokens, numbers, limits.
//
// Room: pure parsing helpers with memcached 1.6.18's exact semantics. No
// storage, no sockets (text.cc and meta.cc join this with core/).
#ifndef TINYCACHED_SERVER_PROTOCOL_ASCII_H_
#define TINYCACHED_SERVER_PROTOCOL_ASCII_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tinycached::protocol {

inline constexpr size_t kMaxKeyLength = 250;
// A command line may not run longer than this without its '\n' unless it is
// a get/gets (a multi-get), else the connection is closed (memcached's rule).
inline constexpr size_t kMaxLineWithoutNewline = 2048;
// Multi-get lines are unbounded in memcached; we stop at this.
inline constexpr size_t kMaxGetLine = size_t{16} << 20;
// memcached tokenizes at most this many tokens, the last one being the rest
// of the line (or empty).
inline constexpr size_t kMaxTokens = 24;

// The tokens of one command line, split on ' ' as memcached's
// tokenize_command(): empty tokens are skipped; after kMaxTokens - 1 tokens
// the unprocessed remainder is kept in `rest`.
struct Tokens {
  std::array<std::string_view, kMaxTokens> token{};
  size_t count = 0;       // tokens in `token`, NOT counting memcached's terminal token
  std::string_view rest;  // unprocessed remainder; empty when the line was fully split
  bool has_rest = false;

  // memcached counts a terminal token too; its WANT_TOKENS checks use this.
  size_t ntokens() const { return count + 1; }
  std::string_view operator[](size_t i) const { return token[i]; }
};

// REQUIRES: `line` has no '\n' (and is cut at the first NUL by the caller).
void Tokenize(std::string_view line, Tokens* out);

// memcached's safe_strtoul/safe_strtol/safe_strtoull on a token: strto*
// semantics (leading whitespace and sign allowed), the number must be followed
// by the end or whitespace, ERANGE fails, a '-' on a value that would be
// negative as signed fails; the 32-bit versions keep the low 32 bits as
// memcached's assignment does.
bool ParseUint32(std::string_view token, uint32_t* out);
bool ParseInt32(std::string_view token, int32_t* out);
bool ParseUint64(std::string_view token, uint64_t* out);
// memcached's safe_strtod: strtod semantics, then the end or whitespace.
bool ParseDouble(std::string_view token, double* out);

// Appends the decimal digits of `v`.
template <typename String>
void AppendDecimal(String* out, uint64_t v) {
  char buf[20];
  size_t n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out->push_back(buf[--n]);
}

}  // namespace tinycached::protocol

#endif  // TINYCACHED_SERVER_PROTOCOL_ASCII_H_
