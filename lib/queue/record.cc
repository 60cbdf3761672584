#include "queue/record.hh"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace strata::queue::detail {

namespace {
constexpr std::uint8_t version = 1;
constexpr std::size_t header_size = 32;

template <class T>
void put_raw(std::string& out, std::size_t at, T v) {
    std::memcpy(out.data() + at, &v, sizeof v);
}
template <class T>
T get_raw(std::string_view in, std::size_t at) {
    T v;
    std::memcpy(&v, in.data() + at, sizeof v);
    return v;
}
} // namespace

// Layout: u8 version, u8 state, u16 zero, u32 attempts, i64 due_ms, i64 enqueued_ms,
// u64 token, then the reason bytes.
std::string encode(const Record& r) {
    std::string out(header_size, '\0');
    put_raw(out, 0, version);
    put_raw(out, 1, static_cast<std::uint8_t>(r.state));
    put_raw(out, 4, r.attempts);
    put_raw(out, 8, r.due_ms);
    put_raw(out, 16, r.enqueued_ms);
    put_raw(out, 24, r.token);
    out += r.reason;
    return out;
}

Record decode(std::string_view in) {
    if (in.size() < header_size || get_raw<std::uint8_t>(in, 0) != version ||
        get_raw<std::uint8_t>(in, 1) > static_cast<std::uint8_t>(State::dead))
        throw std::runtime_error("queue: corrupt item record");
    Record r;
    r.state = static_cast<State>(get_raw<std::uint8_t>(in, 1));
    r.attempts = get_raw<std::uint32_t>(in, 4);
    r.due_ms = get_raw<std::int64_t>(in, 8);
    r.enqueued_ms = get_raw<std::int64_t>(in, 16);
    r.token = get_raw<std::uint64_t>(in, 24);
    r.reason.assign(in.substr(header_size));
    return r;
}

void put_be64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>(v >> shift));
}

std::uint64_t get_be64(std::string_view in, std::size_t offset) {
    if (in.size() < offset + 8) throw std::runtime_error("queue: corrupt index key");
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i)
        v = v << 8 | static_cast<unsigned char>(in[offset + i]);
    return v;
}

std::string id_key(std::uint64_t id) {
    std::string k;
    put_be64(k, id);
    return k;
}

std::uint64_t parse_id_key(std::string_view key) {
    return get_be64(key, 0);
}

std::string time_id_key(std::int64_t ms, std::uint64_t id) {
    std::string k;
    put_be64(k, static_cast<std::uint64_t>(std::max<std::int64_t>(ms, 0)));
    put_be64(k, id);
    return k;
}

std::pair<std::int64_t, std::uint64_t> parse_time_id_key(std::string_view key) {
    return {static_cast<std::int64_t>(get_be64(key, 0)), get_be64(key, 8)};
}

} // namespace strata::queue::detail
