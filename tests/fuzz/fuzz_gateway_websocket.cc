// libFuzzer target: the gateway's reading of a WebSocket handshake (websocket_proxy.hh) on
// arbitrary headers: is_websocket_upgrade() decides, check_websocket_handshake() accepts or
// throws http::Error, never anything else.
#include "http/message.hh"
#include "websocket_proxy.hh"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // First line: "METHOD VERSION"; then "Name: value" lines; a line "--" starts the body.
    strata::http::Request req;
    bool first = true, in_body = false;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (in_body) {
            req.body.append(line);
        } else if (first) {
            auto sp = line.find(' ');
            req.method = std::string(line.substr(0, sp));
            if (sp != std::string_view::npos) req.version = std::string(line.substr(sp + 1));
            first = false;
        } else if (line == "--") {
            in_body = true;
        } else {
            auto colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ')
                value.remove_prefix(1);
            req.headers.emplace(std::string(line.substr(0, colon)), std::string(value));
        }
    }
    if (strata::gatewayd::is_websocket_upgrade(req)) {
        try {
            strata::gatewayd::check_websocket_handshake(req);
        } catch (const strata::http::Error&) {
        }
    }
    return 0;
}
