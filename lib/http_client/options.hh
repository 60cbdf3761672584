// Tunables shared by Client and AsyncClient.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace strata::http_client {

struct Options {
    std::chrono::milliseconds connect_timeout{5000};
    // Whole exchange (connect, send, wait, receive); Request::timeout overrides it. 0 = none.
    std::chrono::milliseconds timeout{30000};
    // Larger response bodies fail with ErrorKind::too_large. 0 = no limit.
    std::size_t max_response_bytes = std::size_t{64} << 20;
    // Client: keep-alive connections kept in the pool. AsyncClient: parallel connections to
    // the target (further requests wait for a free one).
    std::size_t max_connections = 8;
    std::string user_agent; // empty: "strata/<version>"
};

} // namespace strata::http_client
