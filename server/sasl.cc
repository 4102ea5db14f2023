#include "server/sasl.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"

namespace tinycached::server {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Every byte of the longer string is looked at; a length difference is
  // folded in rather than returned early.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  // The compiler may not turn the loop into an early exit: `diff` is read once.
  volatile unsigned result = diff;
  return result == 0;
}

SaslPasswords SaslPasswords::FromText(std::string_view text) {
  SaslPasswords db;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    db.entries_.emplace_back(std::string(line.substr(0, colon)),
                             std::string(line.substr(colon + 1)));
  }
  return db;
}

absl::StatusOr<SaslPasswords> SaslPasswords::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrFormat("cannot read SASL password file %s", path));
  std::ostringstream text;
  text << in.rdbuf();
  // A password file is small; a huge one is a mistake, not a database.
  if (text.str().size() > (size_t{16} << 20)) {
    return absl::InvalidArgumentError(absl::StrFormat("SASL password file %s is over 16 MB", path));
  }
  SaslPasswords db = FromText(text.str());
  if (db.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("SASL password file %s has no user:password line", path));
  }
  return db;
}

bool SaslPasswords::Check(std::string_view user, std::string_view password) const {
  bool found = false;
  for (const auto& [u, p] : entries_) {
    // Both comparisons always run, so a wrong user costs what a wrong password does.
    const bool user_ok = ConstantTimeEquals(u, user);
    const bool password_ok = ConstantTimeEquals(p, password);
    found |= user_ok & password_ok;
  }
  return found;
}

}  // namespace tinycached::server
