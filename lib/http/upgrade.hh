// An HTTP/1.1 protocol switch (RFC 9110 7.8): a handler answers 101 with Response::upgrade
// set, and once the 101 head has gone out the general server (server.hh) hands the
// connection over as an Upgraded. The socket stays the server's: never close() it; dropping
// the Upgraded gives it back, closed.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace strata::http {

class Upgraded {
public:
    virtual ~Upgraded() = default; // closes the connection
    // Non-blocking; read and write it, shutdown() it, never close() it.
    virtual int fd() const = 0;
    // Bytes the client sent after the request head, read by the server already: they come
    // before anything read from fd().
    virtual std::string take_early_bytes() = 0;
    // Called (once, on the loop) when the server stops while the connection is open: the
    // socket closes right after, so whoever watches fd() must stop watching it now. The
    // Upgraded stays valid (its destruction is then a no-op).
    virtual void on_revoked(std::function<void()> revoked) = 0;
};

using UpgradeHandler = std::function<void(std::unique_ptr<Upgraded>)>;

} // namespace strata::http
