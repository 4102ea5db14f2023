// core/engine.cc — where an engine is chosen, and helpers every engine shares.
#include "core/engine.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/item_store.h"
#include "core/tiny_store.h"

namespace tinycached::core {
namespace {

template <typename T>
absl::StatusOr<std::unique_ptr<Engine>> Upcast(absl::StatusOr<std::unique_ptr<T>> made) {
  if (!made.ok()) return made.status();
  return std::unique_ptr<Engine>(*std::move(made));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> CreateEngine(const StoreOptions& options,
                                                     const Clock* clock) {
  // One line per engine kind.
  switch (options.engine) {
    case EngineKind::kSlabs:
      return Upcast(ItemStore::Create(options, clock));
    case EngineKind::kTiny:
      return Upcast(TinyStore::Create(options, clock));
  }
  return absl::InvalidArgumentError("unknown engine kind");
}

bool ParseStoredNumber(std::string_view v, uint64_t* out) {
  std::string s(v);  // NUL-terminated copy; values that are numbers are short
  const char* str = s.c_str();
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(str, &end, 10);
  if (errno == ERANGE || end == str) return false;
  if (*end != '\0' && std::strchr(" \t\n\v\f\r", *end) == nullptr) return false;
  if (static_cast<long long>(n) < 0 && std::memchr(str, '-', end - str) != nullptr) return false;
  *out = n;
  return true;
}

}  // namespace tinycached::core
