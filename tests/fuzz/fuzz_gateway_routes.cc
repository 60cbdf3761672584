// libFuzzer target: the gateway's pool and route syntax (gatewayd.conf [proxy]) on arbitrary
// text must parse or throw std::invalid_argument, never crash; what parses must match and
// rewrite paths without failing.
#include "proxy_config.hh"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // First line: a pool; second: a route; third: a Host and a path to match.
    auto line = [&text]() {
        auto nl = text.find('\n');
        std::string_view l = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        return l;
    };
    std::string_view pool_text = line(), route_text = line(), probe = line();
    try {
        (void)strata::gatewayd::parse_pool(pool_text);
    } catch (const std::invalid_argument&) {
    }
    try {
        auto route = strata::gatewayd::parse_route(route_text);
        strata::gatewayd::RouteTable table({route});
        auto space = probe.find(' ');
        std::string_view host = probe.substr(0, space);
        std::string_view path = space == std::string_view::npos ? "/" : probe.substr(space + 1);
        if (const auto* r = table.match(host, path)) (void)strata::gatewayd::rewrite_path(*r, path);
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
