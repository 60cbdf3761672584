// Creating listening sockets when systemd did not hand them over.
#pragma once

#include <string>
#include <sys/types.h>

namespace strata::http {

// Binds a unix stream socket at `path` (mode, group applied; gid -1 leaves it). A stale
// socket file nobody listens on is replaced; one that answers is an error (another instance).
// Throws std::system_error / std::runtime_error naming the path.
int listen_unix(const std::string& path, mode_t mode, gid_t gid);

// Binds "host:port", "[v6]:port" or ":port"/"*:port" (all addresses). Throws on errors.
int listen_tcp(const std::string& address);

// Port the socket is bound to (tests bind port 0).
int bound_port(int fd);

} // namespace strata::http
