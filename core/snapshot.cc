#include "core/snapshot.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace tinycached::core {
namespace {

constexpr char kMagic[16] = {'t', 'i', 'n', 'y', 'c', 'a', 'c', 'h',
                             'e', 'd', ' ', 'w', 'a', 'r', 'm', '\n'};
constexpr size_t kFileHeader = 24;                // magic, version, 0
constexpr size_t kBlockHeader = 16;               // kind, length, checksum
constexpr size_t kBlockTarget = size_t{1} << 20;  // an items block closes past this

enum BlockKind : uint32_t { kSettings = 1, kPrefixes = 2, kItems = 3, kEnd = 4 };

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 4);
}
void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void PutVarint(std::string* out, uint64_t v) {
  char b[10];
  int n = 0;
  while (v >= 0x80) {
    b[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  b[n++] = static_cast<char>(v);
  out->append(b, static_cast<size_t>(n));
}

// Reads a varint from [*p, end); false if it runs past the end or past 64 bits.
bool GetVarint(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p == end) return false;
    const uint8_t b = *(*p)++;
    if (shift == 63 && b > 1) return false;
    r |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}

// One record of an items block, decoded in place (views into the file).
struct Record {
  std::string_view key, value;
  uint64_t flags = 0, exptime = 0, cas = 0;
};

bool GetBytes(const uint8_t** p, const uint8_t* end, std::string_view* out) {
  uint64_t n = 0;
  if (!GetVarint(p, end, &n) || n > static_cast<uint64_t>(end - *p)) return false;
  *out = std::string_view(reinterpret_cast<const char*>(*p), n);
  *p += n;
  return true;
}

bool GetRecord(const uint8_t** p, const uint8_t* end, Record* r) {
  return GetBytes(p, end, &r->key) && !r->key.empty() && r->key.size() <= compact::kMaxKeyLength &&
         GetBytes(p, end, &r->value) && GetVarint(p, end, &r->flags) && r->flags <= UINT32_MAX &&
         GetVarint(p, end, &r->exptime) && r->exptime <= INT64_MAX && GetVarint(p, end, &r->cas);
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Writes whole blocks to a file descriptor.
class BlockWriter {
 public:
  explicit BlockWriter(int fd) : fd_(fd) {}

  bool Raw(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
      written_ += static_cast<uint64_t>(n);
    }
    return true;
  }
  bool Block(uint32_t kind, std::string_view payload) {
    std::string header;
    PutU32(&header, kind);
    PutU32(&header, static_cast<uint32_t>(payload.size()));
    PutU64(&header, SnapshotChecksum(kind, payload));
    return Raw(header) && Raw(payload);
  }
  uint64_t written() const { return written_; }

 private:
  const int fd_;
  uint64_t written_ = 0;
};

// A read-only mapping of a whole file.
class MappedFile {
 public:
  ~MappedFile() {
    if (data_ != nullptr) munmap(data_, size_);
    if (fd_ >= 0) close(fd_);
  }
  absl::Status Open(const std::string& path) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
      return absl::DataLossError(absl::StrCat(path, ": ", std::strerror(errno)));
    }
    struct stat st {};
    if (fstat(fd_, &st) != 0) {
      return absl::DataLossError(absl::StrCat(path, ": ", std::strerror(errno)));
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
    }
    regular_ = true;
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return absl::OkStatus();
    void* m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (m == MAP_FAILED) {
      return absl::DataLossError(absl::StrCat(path, ": mmap: ", std::strerror(errno)));
    }
    data_ = static_cast<uint8_t*>(m);
    madvise(data_, size_, MADV_SEQUENTIAL);
    return absl::OkStatus();
  }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool regular() const { return regular_; }

 private:
  bool regular_ = false;
  int fd_ = -1;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// What a whole, checked file holds.
struct Parsed {
  std::string_view settings;
  std::vector<std::string> prefixes;
  std::vector<std::string_view> item_blocks;
  uint64_t items = 0;
};

absl::Status Corrupt(const std::string& what) { return absl::DataLossError(what); }

absl::StatusOr<Parsed> Parse(const uint8_t* data, size_t size) {
  if (size < kFileHeader || std::memcmp(data, kMagic, sizeof(kMagic)) != 0) {
    return Corrupt("not a tinycached warm restart file");
  }
  if (GetU32(data + 20) != 0) return Corrupt("damaged file header");
  if (GetU32(data + 16) != kSnapshotFormatVersion) {
    return Corrupt(absl::StrFormat("format version %d, this server reads %d", GetU32(data + 16),
                                   kSnapshotFormatVersion));
  }
  Parsed parsed;
  bool seen_settings = false, ended = false;
  uint64_t records = 0;
  size_t off = kFileHeader;
  while (off < size) {
    if (ended) return Corrupt("bytes after the end block");
    if (size - off < kBlockHeader) return Corrupt("truncated block header");
    const uint32_t kind = GetU32(data + off);
    const uint32_t length = GetU32(data + off + 4);
    const uint64_t checksum = GetU64(data + off + 8);
    off += kBlockHeader;
    if (length > size - off) return Corrupt("truncated block");
    const std::string_view payload(reinterpret_cast<const char*>(data + off), length);
    off += length;
    if (SnapshotChecksum(kind, payload) != checksum) return Corrupt("block checksum mismatch");
    const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
    const uint8_t* end = p + payload.size();
    switch (kind) {
      case kSettings:
        if (seen_settings) return Corrupt("two settings blocks");
        parsed.settings = payload;
        seen_settings = true;
        break;
      case kPrefixes:
        while (p < end) {
          const size_t n = *p++;
          if (n > static_cast<size_t>(end - p)) return Corrupt("truncated prefix");
          parsed.prefixes.emplace_back(reinterpret_cast<const char*>(p), n);
          p += n;
        }
        break;
      case kItems:
        while (p < end) {
          Record r;
          if (!GetRecord(&p, end, &r)) return Corrupt("malformed item record");
          ++records;
        }
        parsed.item_blocks.push_back(payload);
        break;
      case kEnd:
        if (length != 16) return Corrupt("malformed end block");
        parsed.items = GetU64(p);
        ended = true;
        break;
      default:
        return Corrupt(absl::StrFormat("unknown block kind %d", kind));
    }
  }
  if (!ended) return Corrupt("no end block (truncated file)");
  if (!seen_settings) return Corrupt("no settings block");
  if (records != parsed.items) {
    return Corrupt(
        absl::StrFormat("%d item records, the end block says %d", records, parsed.items));
  }
  return parsed;
}

// The first setting that differs, for the log line: "written with
// engine=slabs, now engine=tiny".
std::string SettingsDiffer(std::string_view file, std::string_view now) {
  const std::vector<absl::string_view> a =
      absl::StrSplit(absl::string_view(file.data(), file.size()), ' ');
  const std::vector<absl::string_view> b =
      absl::StrSplit(absl::string_view(now.data(), now.size()), ' ');
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i] == b[i]) continue;
    if (absl::StartsWith(a[i], "classes=")) return "written with other slab classes";
    return absl::StrCat("written with ", a[i], ", now ", b[i]);
  }
  return "written with other settings";
}

}  // namespace

uint64_t SnapshotChecksum(uint32_t kind, std::string_view payload) {
  // 8 bytes a step: multiply, rotate, multiply (two odd 64-bit constants),
  // then a final avalanche, so any changed bit changes about half the sum.
  constexpr uint64_t kMul1 = 0x9e3779b97f4a7c15ULL;
  constexpr uint64_t kMul2 = 0xc2b2ae3d27d4eb4fULL;
  uint64_t h = (static_cast<uint64_t>(kind) << 32 | payload.size()) * kMul1;
  size_t i = 0;
  for (; i + 8 <= payload.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, payload.data() + i, 8);
    h ^= w * kMul2;
    h = ((h << 31) | (h >> 33)) * kMul1;
  }
  if (i < payload.size()) {
    uint64_t w = 0;
    std::memcpy(&w, payload.data() + i, payload.size() - i);
    h ^= w * kMul2;
    h = ((h << 31) | (h >> 33)) * kMul1;
  }
  h ^= h >> 33;
  h *= kMul2;
  h ^= h >> 29;
  return h;
}

std::string SnapshotSettings(const Engine& engine) {
  const StoreOptions& o = engine.options();
  const LayoutReport layout = engine.layout_report();
  std::string s = absl::StrFormat(
      "engine=%s memory_limit=%d item_size_max=%d page_size=%d chunk_max=%d cas=%d "
      "header_bytes=%d ref_bytes=%d keys=%s classes=",
      EngineKindName(engine.kind()), engine.memory_limit(), o.slabs.item_size_max, layout.page_size,
      layout.chunk_max, o.cas_enabled ? 1 : 0, layout.header_bytes, layout.ref_bytes,
      o.layout.pack_keys ? "packed" : "text");
  for (size_t i = 0; i < layout.classes.size(); ++i) {
    absl::StrAppend(&s, i == 0 ? "" : ",", layout.classes[i].chunk_size);
  }
  return s;
}

absl::StatusOr<SaveReport> SaveSnapshot(Engine& engine, const Clock& clock,
                                        const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(tmp, ": ", std::strerror(errno)));
  BlockWriter w(fd);
  bool ok = true;
  {
    std::string header(kMagic, sizeof(kMagic));
    PutU32(&header, kSnapshotFormatVersion);
    PutU32(&header, 0);
    ok = w.Raw(header) && w.Block(kSettings, SnapshotSettings(engine));
  }
  if (ok) {
    std::string prefixes;
    for (const std::string& p : engine.LearnedPrefixes()) {
      prefixes.push_back(static_cast<char>(p.size()));
      prefixes.append(p);
    }
    ok = w.Block(kPrefixes, prefixes);
  }
  uint64_t items = 0;
  if (ok) {
    std::string block;
    block.reserve(kBlockTarget + 4096);
    const int64_t started = clock.StartedAt();
    engine.ExportItems([&](const ItemInfo& item) {
      if (!ok) return;
      PutVarint(&block, item.key.size());
      block.append(item.key);
      PutVarint(&block, item.value.size());
      block.append(item.value);
      PutVarint(&block, item.flags);
      PutVarint(&block, item.exptime == 0 ? 0 : static_cast<uint64_t>(started + item.exptime));
      PutVarint(&block, item.cas);
      ++items;
      if (block.size() >= kBlockTarget) {
        ok = w.Block(kItems, block);
        block.clear();
      }
    });
    if (ok && !block.empty()) ok = w.Block(kItems, block);
  }
  if (ok) {
    std::string end;
    PutU64(&end, items);
    PutU64(&end, static_cast<uint64_t>(clock.UnixNow()));
    ok = w.Block(kEnd, end);
  }
  const int saved_errno = errno;
  if (ok && fdatasync(fd) != 0) ok = false;
  if (close(fd) != 0) ok = false;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno != 0 ? errno : saved_errno);
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat(tmp, ": ", why));
  }
  return SaveReport{items, w.written(), SecondsSince(t0)};
}

absl::StatusOr<RestoreReport> RestoreSnapshot(Engine& engine, const Clock& clock,
                                              const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  MappedFile file;
  if (absl::Status s = file.Open(path); !s.ok()) {
    // Only a regular file is ever removed (a device or a directory named by
    // mistake is left alone).
    if (file.regular()) unlink(path.c_str());
    return s;
  }
  // Read once: whatever it holds, a later crash must not bring it back.
  unlink(path.c_str());
  absl::StatusOr<Parsed> parsed = Parse(file.data(), file.size());
  if (!parsed.ok()) return parsed.status();
  const std::string here = SnapshotSettings(engine);
  if (parsed->settings != here) {
    return absl::FailedPreconditionError(SettingsDiffer(parsed->settings, here));
  }
  engine.TeachPrefixes(parsed->prefixes);
  engine.ReserveItems(parsed->items);

  // One thread, in the file's order: each class's LRU comes back as it was,
  // and the tiny table fills as it filled before. (Two threads were barely
  // faster on two cores, and near a full table their interleaving evicted
  // a few items.)
  RestoreReport report;
  const uint64_t evicted_before = engine.Totals().evictions;
  const int64_t now = clock.UnixNow();
  ThreadStats stats;  // a restore is not traffic: its command counts are dropped
  // Each store's table lookups miss the cache (the keys land anywhere in
  // it): the engine starts fetching kAhead records ahead, so that about that
  // many misses are under way at once.
  constexpr size_t kAhead = 16;
  std::vector<Record> records;
  for (const std::string_view block : parsed->item_blocks) {
    const auto* p = reinterpret_cast<const uint8_t*>(block.data());
    const uint8_t* end = p + block.size();
    records.clear();
    for (Record r; p < end && GetRecord(&p, end, &r);) records.push_back(r);
    for (size_t i = 0; i < records.size(); ++i) {
      if (i + kAhead < records.size()) engine.Prefetch(records[i + kAhead].key);
      const Record& r = records[i];
      const auto exptime = static_cast<int64_t>(r.exptime);
      if (exptime != 0 && exptime <= now) {
        ++report.expired;
        continue;
      }
      MetaStoreOptions options;
      options.restored_cas = r.cas;
      // An absolute expiry (> 30 days) is kept as the same moment.
      const StoreResult result =
          engine.MetaStore(StoreMode::kSet, r.key, static_cast<uint32_t>(r.flags), exptime, r.value,
                           0, options, stats, nullptr);
      ++(result == StoreResult::kStored ? report.items : report.not_stored);
    }
  }
  report.evicted = engine.Totals().evictions - evicted_before;
  report.seconds = SecondsSince(t0);
  return report;
}

}  // namespace tinycached::core
