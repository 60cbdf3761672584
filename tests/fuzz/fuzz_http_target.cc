// libFuzzer target: request targets (lib/http/target) and the incremental request reader
// (lib/http/request_reader) on arbitrary bytes.
//
// Targets, on the whole input: parse_target and percent_decode never crash; a parsed path
// starts with '/' and, like every decoded query key and value, holds no byte < 0x20 or 0x7f;
// parsing the same input twice gives the same result; percent_decode's output is no longer
// than its input, is control-free and is the input itself when there is nothing to decode.
//
// Reader: the first byte picks a split point in the rest of the input; both pieces are fed
// to a RequestReader (4096 header bytes, 65536 body bytes), taking every complete request
// and continuing with the unconsumed rest, until the input ends or the reader fails.
// feed() never consumes more than it was given (all of it unless a request completed or it
// failed); an error status is 400, 413, 431, 501 or 505; a taken request has a method, a
// path starting with '/' (control-free), an HTTP/1.x version and a body within the limit.
#include "http/request_reader.hh"
#include "http/target.hh"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace strata::http;

namespace {

constexpr std::size_t kMaxHeaderBytes = 4096;
constexpr std::size_t kMaxBodyBytes = 65536;

void check(bool ok) {
    if (!ok) std::abort();
}

bool control_free(std::string_view s) {
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) return false;
    }
    return true;
}

bool same(const std::optional<Target>& a, const std::optional<Target>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->path == b->path && a->query == b->query);
}

void check_target(std::string_view text) {
    std::optional<Target> t = parse_target(text);
    if (t) {
        check(!t->path.empty() && t->path.front() == '/');
        check(control_free(t->path));
        check(t->path.size() <= text.size());
        for (const auto& [key, value] : t->query) {
            check(control_free(key));
            check(control_free(value));
        }
    }
    check(same(t, parse_target(text)));

    for (bool plus_is_space : {false, true}) {
        std::optional<std::string> d = percent_decode(text, plus_is_space);
        if (!d) continue;
        check(d->size() <= text.size());
        check(control_free(*d));
        if (text.find('%') == std::string_view::npos &&
            (!plus_is_space || text.find('+') == std::string_view::npos))
            check(*d == text);
    }
    // With nothing to decode, decoding fails exactly on a control character.
    if (text.find('%') == std::string_view::npos)
        check(percent_decode(text, false).has_value() == control_free(text));
}

void check_request(const Request& r) {
    check(!r.method.empty());
    check(!r.path.empty() && r.path.front() == '/');
    check(control_free(r.path));
    check(r.version.size() >= 8 && r.version.compare(0, 7, "HTTP/1.") == 0);
    check(r.body.size() <= kMaxBodyBytes);
}

// Feeds one piece; false once the reader has failed (nothing more is fed).
bool feed_piece(RequestReader& reader, std::string_view piece, std::size_t& taken,
                std::size_t total) {
    while (!piece.empty()) {
        std::size_t n = reader.feed(piece);
        check(n <= piece.size());
        switch (reader.state()) {
        case RequestReader::State::complete: {
            Request r = reader.take();
            check_request(r);
            check(reader.state() == RequestReader::State::need_more);
            // Every request takes at least a request line: no endless stream of requests
            // out of a finite input.
            check(++taken <= total);
            piece.remove_prefix(n);
            break;
        }
        case RequestReader::State::error: {
            int s = reader.error_status();
            check(s == 400 || s == 413 || s == 431 || s == 501 || s == 505);
            check(!reader.error_message().empty());
            return false;
        }
        case RequestReader::State::need_more:
            check(n == piece.size()); // all of it, as documented
            piece = {};
            break;
        }
    }
    return true;
}

void check_reader(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return;
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    std::size_t split = (static_cast<std::size_t>(data[0]) * (rest.size() + 1)) / 256;
    RequestReader reader(kMaxHeaderBytes, kMaxBodyBytes);
    std::size_t taken = 0;
    if (feed_piece(reader, rest.substr(0, split), taken, rest.size()))
        feed_piece(reader, rest.substr(split), taken, rest.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    check_target(std::string_view(reinterpret_cast<const char*>(data), size));
    check_reader(data, size);
    return 0;
}
