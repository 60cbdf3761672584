// Key encodings shared by metad's LMDB databases: ids are big-endian u64, so LMDB's byte
// order is id order and a prefix scan lists one owner's entries.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::metad {

inline std::string be64(std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 7; i >= 0; --i, v >>= 8)
        s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    return s;
}

inline std::uint64_t from_be64(std::string_view s) {
    std::uint64_t v = 0;
    for (char c : s.substr(0, 8))
        v = (v << 8) | static_cast<unsigned char>(c);
    return v;
}

// Unix milliseconds, the time unit of every record.
inline std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

} // namespace strata::metad
