// server/sasl.h — the -S password file and its SASL PLAIN check.
//
// Room: server/. Reads a file once at start (main.cc); binary sessions call
// Check() from any worker thread (it only reads).
//
// The file follows memcached's MEMCACHED_SASL_PWDB convention: one
// "user:password" per line; the user ends at the first ':', the password is
// the rest of the line (without its "\n" or "\r\n"). Empty lines and lines
// without ':' are skipped.
#ifndef TINYCACHED_SERVER_SASL_H_
#define TINYCACHED_SERVER_SASL_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tinycached::server {

class SaslPasswords {
 public:
  // The mechanism served, as SASL_LIST_MECHS answers it.
  static constexpr std::string_view kMechanisms = "PLAIN";

  static absl::StatusOr<SaslPasswords> Load(const std::string& path);
  static SaslPasswords FromText(std::string_view text);

  // True when `user` is listed with exactly `password`. The time taken does
  // not depend on where the password differs, nor on which entry matched:
  // every entry is compared in full.
  bool Check(std::string_view user, std::string_view password) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// Compares in time that depends only on the lengths (not on the contents).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_SASL_H_
