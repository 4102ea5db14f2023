// experiments/fill_report.cc — the fill client's report: the text summary,
// the JSON object (--json) and the CSV line (--csv) of one run (fill_report.h).
#include "experiments/fill_report.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace tinycached::fill {
namespace {

using client_io::JsonString;

std::string FormatDouble(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

std::string BytesPerItem(const FillResult& r) {
  return r.items == 0 ? "" : FormatDouble(static_cast<double>(r.limit_bytes) / r.items, 2);
}

std::string AllInBytesPerItem(const FillResult& r) {
  if (r.items == 0 || !r.rss_before_kb.has_value() || !r.rss_after_kb.has_value()) return "";
  const double growth = (static_cast<double>(*r.rss_after_kb) - *r.rss_before_kb) * 1024.0;
  return FormatDouble(growth / r.items, 2);
}

std::string OptionalNumber(const std::optional<uint64_t>& value) {
  return value.has_value() ? std::to_string(*value) : "";
}

std::string OrderName(KeyOrder order) {
  return order == KeyOrder::kShuffled ? "shuffled" : "sequential";
}

std::string CsvField(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

// One row of named fields; an empty value means "not measured".
std::vector<std::pair<std::string, std::string>> ReportFields(const Options& o,
                                                              const ItemShape& shape,
                                                              const FillResult& r) {
  const VerifyResult v = r.verify.value_or(VerifyResult());
  const bool verified = r.verify.has_value();
  auto verify_number = [&](uint64_t n) { return verified ? std::to_string(n) : std::string(); };
  std::vector<std::pair<std::string, std::string>> fields = {
      {"label", o.label},
      {"host", o.host},
      {"port", std::to_string(o.port)},
      {"order", OrderName(o.order)},
      {"value_size", std::to_string(o.value_size)},
      {"key_prefix", o.key_prefix},
      {"items", std::to_string(r.items)},
      {"limit_bytes", std::to_string(r.limit_bytes)},
      {"bytes_per_item", BytesPerItem(r)},
      {"rss_before_kb", OptionalNumber(r.rss_before_kb)},
      {"rss_after_kb", OptionalNumber(r.rss_after_kb)},
      {"allin_bytes_per_item", AllInBytesPerItem(r)},
      {"seconds", FormatDouble(r.seconds, 3)},
      {"evictions", std::to_string(r.evictions)},
      {"sent", std::to_string(r.sent)},
      {"polls", std::to_string(r.polls)},
      {"stop_reason", r.stop_reason},
      {"verify_sampled", verify_number(v.sampled)},
      {"verify_hits", verify_number(v.hits)},
      {"verify_misses", verify_number(v.misses)},
      {"verify_corrupt", verify_number(v.corrupt)},
  };
  // Only with --stats-port: JSON arrays, one number per server behind the proxy.
  if (!r.nodes.empty()) {
    auto list = [&](auto field) {
      std::string out = "[";
      for (const FillResult::Node& n : r.nodes) {
        if (out.size() > 1) out.push_back(',');
        out.append(field(n));
      }
      return out + "]";
    };
    uint64_t full = 0;
    bool all_full = true;
    for (const FillResult::Node& n : r.nodes) {
      full += n.items_at_own_eviction.value_or(0);
      all_full = all_full && n.items_at_own_eviction.has_value();
    }
    fields.insert(
        fields.end(),
        {{"node_ports", list([](const auto& n) { return std::to_string(n.port); })},
         {"node_items",
          list([](const auto& n) { return std::to_string(n.items_at_first_eviction); })},
         {"node_items_full", list([](const auto& n) {
            return n.items_at_own_eviction.has_value() ? std::to_string(*n.items_at_own_eviction)
                                                       : std::string("null");
          })},
         {"node_items_end", list([](const auto& n) { return std::to_string(n.items_end); })},
         {"node_evictions_end",
          list([](const auto& n) { return std::to_string(n.evictions_end); })},
         {"items_every_node_full", all_full ? std::to_string(full) : std::string()}});
  }
  // Only with a shape option, so the default report is unchanged.
  if (!shape.Default()) {
    fields.insert(fields.end(), {{"key_shape", shape.KeyShapeName()},
                                 {"key_prefixes", std::to_string(o.key_prefixes)},
                                 {"value_shape", shape.ValueShapeName()}});
  }
  // Only with --past-eviction, so the default report is unchanged.
  if (r.past.has_value()) {
    const FillResult::Past& p = *r.past;
    fields.insert(fields.end(),
                  {{"past_eviction_target", std::to_string(p.target)},
                   {"past_eviction_sent", std::to_string(p.sent)},
                   {"past_eviction_seconds", FormatDouble(p.seconds, 3)},
                   {"items_end", std::to_string(p.items_end)},
                   {"evictions_end", std::to_string(p.evictions_end)},
                   {"rss_first_eviction_kb", OptionalNumber(p.rss_first_eviction_kb)}});
  }
  return fields;
}

// Fields printed as JSON strings rather than numbers.
bool IsTextField(std::string_view name) {
  return name == "label" || name == "host" || name == "order" || name == "key_prefix" ||
         name == "stop_reason" || name == "key_shape" || name == "value_shape";
}

}  // namespace

void PrintJson(const Options& o, const ItemShape& shape, const FillResult& r) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : ReportFields(o, shape, r)) {
    if (!first) out.append(", ");
    first = false;
    out.append(JsonString(name)).append(": ");
    if (IsTextField(name)) {
      out.append(JsonString(value));
    } else {
      out.append(value.empty() ? "null" : value);
    }
  }
  out.append("}\n");
  std::fputs(out.c_str(), stdout);
}

void PrintText(const Options& o, const ItemShape& shape, const FillResult& r) {
  auto kb = [](const std::optional<uint64_t>& v) {
    return v.has_value() ? std::to_string(*v) + " kB" : std::string("(no --pid)");
  };
  const std::string allin = AllInBytesPerItem(r);
  std::printf("label:                 %s\n", o.label.empty() ? "-" : o.label.c_str());
  if (!shape.Default()) {
    std::printf("shape:                 keys %s%s, %llu prefixes; values %s\n",
                o.key_prefix.empty() ? "" : (o.key_prefix + " + ").c_str(),
                shape.KeyShapeName().c_str(), static_cast<unsigned long long>(o.key_prefixes),
                shape.ValueShapeName().c_str());
  }
  std::printf("items stored:          %llu\n", static_cast<unsigned long long>(r.items));
  const std::string per_item = BytesPerItem(r);
  std::printf("bytes per item:        %s (limit %llu bytes)\n",
              per_item.empty() ? "-" : per_item.c_str(),
              static_cast<unsigned long long>(r.limit_bytes));
  std::printf("RSS before:            %s\n", kb(r.rss_before_kb).c_str());
  std::printf("RSS after:             %s\n", kb(r.rss_after_kb).c_str());
  std::printf("all-in bytes per item: %s\n", allin.empty() ? "-" : allin.c_str());
  std::printf("seconds:               %.3f\n", r.seconds);
  std::printf("evictions seen:        %llu\n", static_cast<unsigned long long>(r.evictions));
  for (const FillResult::Node& n : r.nodes) {
    const std::string own = n.items_at_own_eviction.has_value()
                                ? std::to_string(*n.items_at_own_eviction)
                                : std::string("none");
    std::printf("  server port %-8u %llu items at the first eviction, %s at its own\n",
                static_cast<unsigned>(n.port),
                static_cast<unsigned long long>(n.items_at_first_eviction), own.c_str());
  }
  std::printf("sets sent:             %llu in %llu batches, stopped by %s\n",
              static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.polls),
              r.stop_reason.c_str());
  if (r.past.has_value()) {
    const FillResult::Past& p = *r.past;
    std::printf(
        "past the eviction:     %llu more sets in %.3f s: %llu items, "
        "%llu evictions at the end\n",
        static_cast<unsigned long long>(p.sent), p.seconds,
        static_cast<unsigned long long>(p.items_end),
        static_cast<unsigned long long>(p.evictions_end));
    std::printf("RSS at first eviction: %s\n", kb(p.rss_first_eviction_kb).c_str());
  }
  if (r.verify.has_value()) {
    const VerifyResult& v = *r.verify;
    std::printf(
        "verify:                %llu keys re-read: %llu hits, %llu misses, "
        "%llu corrupt\n",
        static_cast<unsigned long long>(v.sampled), static_cast<unsigned long long>(v.hits),
        static_cast<unsigned long long>(v.misses), static_cast<unsigned long long>(v.corrupt));
  }
}

bool AppendCsv(const Options& o, const ItemShape& shape, const FillResult& r) {
  struct stat st {};
  const bool fresh = stat(o.csv_path.c_str(), &st) != 0 || st.st_size == 0;
  std::ofstream out(o.csv_path, std::ios::app);
  if (!out) return false;
  const auto fields = ReportFields(o, shape, r);
  if (fresh) {
    for (size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << fields[i].first;
    out << "\n";
  }
  for (size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << CsvField(fields[i].second);
  out << "\n";
  return static_cast<bool>(out);
}

}  // namespace tinycached::fill
