// libFuzzer target: bytes an upstream might send, fed to AsyncClient's response parser in
// pieces whose sizes come from the input itself (as a socket splits them). The parser must
// end in a state, never crash, and never hand out more body than it was given.
#include "http_client/response_parser.hh"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using strata::http_client::detail::ResponseParser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const bool head = data[0] & 1;
    const std::size_t step = 1 + data[1] % 64;
    std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
    ResponseParser p;
    p.reset(head);
    std::size_t body = 0;
    auto sink = [&](std::string_view b) {
        body += b.size();
        return true;
    };
    std::size_t used = 0;
    while (used < in.size() && p.state() != ResponseParser::State::done &&
           p.state() != ResponseParser::State::error) {
        auto piece = in.substr(used, step);
        std::size_t n = p.feed(piece, sink);
        if (n > piece.size()) std::abort();
        if (n == 0 && p.state() != ResponseParser::State::done &&
            p.state() != ResponseParser::State::error)
            std::abort(); // no progress on a live parser would hang a connection
        used += n;
    }
    if (used == in.size()) p.eof();
    if (body > in.size()) std::abort();
    if (p.state() == ResponseParser::State::done && (p.status() < 100 || p.status() > 599))
        std::abort();
    return 0;
}
