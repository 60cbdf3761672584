// libFuzzer target: raw bytes sent to the real HTTP server (libmicrohttpd + our router and
// limits) over a unix socket. The server must answer or close, never crash or hang.
#include "http/listen.hh"
#include "http/server.hh"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

struct World {
    uv_loop_t loop{};
    strata::http::Router router;
    std::unique_ptr<strata::http::Server> server;
    std::string path;

    World() {
        uv_loop_init(&loop);
        router.get("/healthz", [](strata::http::Request&) {
            return strata::http::Response::json(200, {{"status", "ok"}});
        });
        router.post("/v1/items/{id}", [](strata::http::Request& r) {
            auto j = r.json(); // exercises the JSON error path too
            return strata::http::Response::json(200, {{"id", r.params["id"]}, {"body", j}});
        });
        router.get("/files/{path...}", [](strata::http::Request& r) {
            return strata::http::Response::text(200, r.params["path"]);
        });
        struct Sink : strata::http::BodySink {
            std::size_t bytes = 0;
            void data(std::string_view chunk) override {
                bytes += chunk.size();
                if (chunk.find('!') != std::string_view::npos)
                    throw strata::http::Error(422, "bad", "no '!'");
            }
            strata::http::Response finish() override {
                return strata::http::Response::json(200, {{"bytes", bytes}});
            }
        };
        router.add_stream(
            "PUT", "/upload/{name}",
            [](strata::http::Request&) -> std::unique_ptr<strata::http::BodySink> {
                return std::make_unique<Sink>();
            },
            8192);
        strata::http::Limits limits;
        limits.max_header_bytes = 4096;
        limits.max_body_bytes = 2048;
        limits.idle_timeout_seconds = 1;
        server = std::make_unique<strata::http::Server>(&loop, router, limits);
        path = "/tmp/strata-fuzz-http-" + std::to_string(getpid()) + ".sock";
        server->serve(strata::http::listen_unix(path, 0600, static_cast<gid_t>(-1)));
        std::atexit([] { unlink(instance().path.c_str()); });
    }
    static World& instance() {
        static World w;
        return w;
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    World& w = World::instance();
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, w.path.c_str(), sizeof addr.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
    size_t off = 0;
    char buf[65536];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    bool closed = false;
    // Bounded: the input is sent, the write side shut, and the loop turned until the server
    // closes or answers; a server that does neither within 3 s is a hang and aborts.
    while (!closed) {
        if (off < size) {
            ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (n > 0)
                off += static_cast<size_t>(n);
            else if (errno != EAGAIN)
                off = size;
            if (off == size) shutdown(fd, SHUT_WR);
        } else if (size == 0) {
            shutdown(fd, SHUT_WR);
        }
        uv_run(&w.loop, UV_RUN_NOWAIT);
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
    return 0;
}
