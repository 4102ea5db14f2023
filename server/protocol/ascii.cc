#include "server/protocol/ascii.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tinycached::protocol {
namespace {

bool IsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Runs `parse` (a strto* call) on a NUL-terminated copy of `token` and applies
// memcached's acceptance rule. `parse` returns the value and sets *end.
template <typename T, typename Parse>
bool ParseWith(std::string_view token, T* value, Parse parse) {
  char small[64];
  std::string large;
  const char* str;
  if (token.size() < sizeof(small)) {
    std::memcpy(small, token.data(), token.size());
    small[token.size()] = '\0';
    str = small;
  } else {
    large.assign(token);
    str = large.c_str();
  }
  char* end = nullptr;
  errno = 0;
  *value = parse(str, &end);
  if (errno == ERANGE || end == str) return false;
  return IsSpace(*end) || *end == '\0';
}

}  // namespace

void Tokenize(std::string_view line, Tokens* out) {
  out->count = 0;
  out->has_rest = false;
  out->rest = {};
  size_t i = 0;
  const size_t n = line.size();
  while (i < n) {
    while (i < n && line[i] == ' ') ++i;
    if (i == n) break;
    size_t j = i;
    while (j < n && line[j] != ' ') ++j;
    out->token[out->count++] = line.substr(i, j - i);
    i = j;
    if (out->count == kMaxTokens - 1) {
      // memcached stops after the separator that follows the last token.
      if (i < n) ++i;
      if (i < n) {
        out->rest = line.substr(i);
        out->has_rest = true;
      }
      return;
    }
  }
}

bool ParseUint32(std::string_view token, uint32_t* out) {
  unsigned long v = 0;
  *out = 0;
  if (!ParseWith(token, &v, [](const char* s, char** e) { return std::strtoul(s, e, 10); })) {
    return false;
  }
  if (static_cast<long>(v) < 0 && token.find('-') != std::string_view::npos) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool ParseInt32(std::string_view token, int32_t* out) {
  long v = 0;
  *out = 0;
  if (!ParseWith(token, &v, [](const char* s, char** e) { return std::strtol(s, e, 10); })) {
    return false;
  }
  *out = static_cast<int32_t>(v);
  return true;
}

bool ParseUint64(std::string_view token, uint64_t* out) {
  unsigned long long v = 0;
  *out = 0;
  if (!ParseWith(token, &v, [](const char* s, char** e) { return std::strtoull(s, e, 10); })) {
    return false;
  }
  if (static_cast<long long>(v) < 0 && token.find('-') != std::string_view::npos) return false;
  *out = v;
  return true;
}

bool ParseDouble(std::string_view token, double* out) {
  *out = 0;
  return ParseWith(token, out, [](const char* s, char** e) { return std::strtod(s, e); });
}

}  // namespace tinycached::protocol
