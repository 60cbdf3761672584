// What the server fuzz targets share: one input sent over a fresh unix-socket connection to
// a server on `loop`, whose loop this thread turns. Bounded: the input is sent, the write
// side shut, and the loop turned until the server closes; a server that does not within
// 3 s is a hang and aborts.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

namespace strata::fuzz {

inline void drive_socket(uv_loop_t* loop, const std::string& path, const std::uint8_t* data,
                         std::size_t size) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
    std::size_t off = 0;
    char buf[65536];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    bool closed = false;
    while (!closed) {
        if (off < size) {
            ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (n > 0)
                off += static_cast<std::size_t>(n);
            else if (errno != EAGAIN)
                off = size;
            if (off == size) shutdown(fd, SHUT_WR);
        } else if (size == 0) {
            shutdown(fd, SHUT_WR);
        }
        uv_run(loop, UV_RUN_NOWAIT);
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                closed = true;
                break;
            }
            if (n < 0) break;
        }
        if (std::chrono::steady_clock::now() > deadline) std::abort();
    }
    close(fd);
}

} // namespace strata::fuzz
