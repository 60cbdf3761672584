// libFuzzer target: bytes an upstream might send, fed to AsyncClient's response parser in
// pieces whose sizes come from the input itself (as a socket splits them). The parser must
// end in a state, never crash, never hand out more body than it was given, and reach the
// same outcome as when the same bytes arrive at once.
#include "http_client/response_parser.hh"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using strata::http_client::detail::ResponseParser;

namespace {

struct Outcome {
    ResponseParser::State state;
    int status;
    std::string body;
};

Outcome parse(std::string_view in, std::size_t step, bool head) {
    ResponseParser p;
    p.reset(head);
    std::string body;
    auto sink = [&](std::string_view b) {
        body.append(b);
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
    if (body.size() > in.size()) std::abort();
    if (p.state() == ResponseParser::State::done && (p.status() < 100 || p.status() > 599))
        std::abort();
    return {p.state(), p.status(), std::move(body)};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const bool head = data[0] & 1;
    const std::size_t step = 1 + data[1] % 64;
    std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
    Outcome pieces = parse(in, step, head);
    // A head read where it lies (all at once) and one gathered from pieces are one parser:
    // they must agree on the outcome and on every body byte.
    Outcome whole = parse(in, in.size(), head);
    if ((pieces.state == ResponseParser::State::error) !=
        (whole.state == ResponseParser::State::error))
        std::abort();
    if (pieces.state == ResponseParser::State::done &&
        (whole.state != pieces.state || whole.status != pieces.status || whole.body != pieces.body))
        std::abort();
    return 0;
}
