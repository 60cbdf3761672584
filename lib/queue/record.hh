#pragma once
// On-disk encoding of the queue (internal). Index keys are big-endian so that LMDB's
// byte-wise key order is numeric order. Item records use host byte order: an LMDB file
// is not portable across byte orders anyway.

#include "queue/types.hh"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace strata::queue::detail {

struct Record {
    State state = State::pending;
    std::uint32_t attempts = 0;
    std::int64_t due_ms = 0; // unix ms: visible at / lease expiry / dead since
    std::int64_t enqueued_ms = 0;
    std::uint64_t token = 0; // current lease token, 0 unless leased
    std::string reason;      // last nack reason
};

std::string encode(const Record& r);
// Throws std::runtime_error if the bytes are not a record of this version.
Record decode(std::string_view bytes);

// 8-byte big-endian id key.
std::string id_key(std::uint64_t id);
std::uint64_t parse_id_key(std::string_view key);
// 16-byte big-endian (time, id) index key; negative times sort as 0.
std::string time_id_key(std::int64_t ms, std::uint64_t id);
std::pair<std::int64_t, std::uint64_t> parse_time_id_key(std::string_view key);

// Big-endian helpers shared by the above and the idempotency index.
void put_be64(std::string& out, std::uint64_t v);
std::uint64_t get_be64(std::string_view in, std::size_t offset);

} // namespace strata::queue::detail
