// The plain side of an upgraded (101) connection on a TLS listener. libmicrohttpd 0.9.75
// forwards upgraded TLS connections itself, through buffers of 4 bytes (its response head
// keeps the whole connection memory pool, leaving the upgrade its 8-byte emergency buffer):
// a WebSocket crawls at a few hundred bytes per loop turn. So the general server (server.cc)
// keeps such a connection suspended in libmicrohttpd and hands its GnuTLS session and socket
// to a TlsTunnel: what the client sends is decrypted into a socketpair whose other end is
// the Upgraded's fd(), and what the owner writes there goes back encrypted. When both sides
// are done the tunnel says so (`released`) and libmicrohttpd closes the connection.
#pragma once

#include "http/upgrade.hh"

#include <functional>
#include <memory>
#include <string>
#include <uv.h>

namespace strata::http {

class TlsTunnel {
public:
    // `session` is the connection's gnutls_session_t, `client_fd` its socket (both stay the
    // server's: never closed here). `head` (the 101's head) goes to the client first.
    // `released` runs once, from the loop, when the tunnel no longer touches either.
    static std::shared_ptr<TlsTunnel> start(uv_loop_t* loop, void* session, int client_fd,
                                            std::string head, std::function<void()> released);
    virtual ~TlsTunnel() = default;
    // The owner's end (once): its fd() carries plain bytes.
    virtual std::unique_ptr<Upgraded> take_upgraded() = 0;
    // The server stops: the owner is told (Upgraded::on_revoked), the tunnel stops at once,
    // and `released` is not called (the server closes the connection itself).
    virtual void revoke() = 0;
};

} // namespace strata::http
