// server/stats_reply.h — the "stats" family of replies, in memcached's order.
#ifndef TINYCACHED_SERVER_STATS_REPLY_H_
#define TINYCACHED_SERVER_STATS_REPLY_H_

#include <string>

#include "server/context.h"

namespace tinycached::server {

// Each appends "STAT name value\r\n" lines and the final "END\r\n".
void AppendGeneralStats(ServerContext& ctx, std::string* out);   // stats
void AppendSettingsStats(ServerContext& ctx, std::string* out);  // stats settings
void AppendItemsStats(ServerContext& ctx, std::string* out);     // stats items
void AppendSlabsStats(ServerContext& ctx, std::string* out);     // stats slabs
void AppendSizesStats(ServerContext& ctx, std::string* out);     // stats sizes
void AppendConnsStats(ServerContext& ctx, std::string* out);     // stats conns
void ResetAllStats(ServerContext& ctx);                          // stats reset

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_STATS_REPLY_H_
