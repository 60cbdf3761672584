// WebSocket proxying (RFC 6455 over an HTTP/1.1 Upgrade) for routes with websocket=on.
//
// The proxy (proxy.cc) applies the route to the opening handshake like to any request, then
// hands it here: the hub connects to a member (unix:/PATH or http://HOST:PORT), sends the
// GET with Connection: Upgrade and Upgrade: websocket, and reads the member's answer. A 101
// becomes the client's 101; once the server has sent it (http/upgrade.hh) bytes are spliced
// both ways on the loop (uv_poll on both sockets, bounded buffers: a slow reader slows the
// writer). Any other answer is relayed as a normal answer.
//
// A connection ends, both sides closed, when either side closes or fails, or after
// idle_timeout without a byte either way (no close frame: the gateway does not parse
// frames). The hub outlives the proxy generations (hot reload keeps connections open) and
// bounds how many connections, handshakes included, are open at once.
#pragma once

#include "http/message.hh"
#include "http_client/message.hh"
#include "metrics/metrics.hh"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <uv.h>

namespace strata::gatewayd {

// Connection holds the token "upgrade" and Upgrade the protocol "websocket" (any case).
bool is_websocket_upgrade(const http::Request& request);
// What the gateway itself needs of an opening handshake (RFC 6455 4.2.1): GET, HTTP/1.1,
// Sec-WebSocket-Key, no body. Throws http::Error 400 bad_websocket_handshake.
void check_websocket_handshake(const http::Request& request);

struct WebSocketLimits {
    std::size_t max_connections = 1024;
    std::chrono::seconds idle_timeout{300};
};

// Registered once (main.cc), shared by every generation:
//   strata_gateway_websocket_connections        upgraded connections open now
//   strata_gateway_websocket_connections_total  connections upgraded since start
struct WebSocketMetrics {
    explicit WebSocketMetrics(metrics::Registry& registry);
    metrics::Gauge* active;
    metrics::Counter* total;
};

// How a handshake ended.
struct WebSocketOutcome {
    enum class Kind {
        upgraded,      // the member answered 101: `upgrade` takes the client's connection
        answered,      // the member answered something else: status, headers, body
        no_connection, // could not connect (another member may be tried)
        failed,        // broke after connecting, or an answer that is not HTTP
        timeout,       // no whole answer within the route's timeout
    };
    Kind kind = Kind::failed;
    int status = 0;
    http_client::Headers headers;
    std::string body;
    http::UpgradeHandler upgrade;
    std::string message; // why, for no_connection, failed and timeout
};

class WebSocketHub {
public:
    WebSocketHub(uv_loop_t* loop, const WebSocketMetrics* metrics, WebSocketLimits limits);
    ~WebSocketHub(); // closes every connection (daemon stop); pending `done`s are not called
    WebSocketHub(const WebSocketHub&) = delete;
    WebSocketHub& operator=(const WebSocketHub&) = delete;

    // Reload: the bound applies at once to new connections, the idle timeout to
    // connections upgraded from now on.
    void set_limits(WebSocketLimits limits) { limits_ = limits; }
    const WebSocketLimits& limits() const { return limits_; }
    std::size_t open_connections() const { return links_.size(); }

    using Done = std::function<void(WebSocketOutcome)>;
    // Starts a handshake with target: GET `path` with `headers` (hop-by-hop ones already
    // removed) and the upgrade headers. done comes once, later, on the loop. False, with
    // nothing started, when max_connections are open.
    bool open(const std::string& target, const std::string& path,
              const http_client::Headers& headers, std::chrono::milliseconds timeout, Done done);

    struct Link; // one connection, from its handshake to its close

private:
    friend struct Link;
    uv_loop_t* loop_;
    const WebSocketMetrics* metrics_;
    WebSocketLimits limits_;
    std::unordered_map<Link*, std::shared_ptr<Link>> links_;
};

} // namespace strata::gatewayd
