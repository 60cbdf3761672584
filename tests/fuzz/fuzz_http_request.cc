// libFuzzer target: raw bytes sent to the real HTTP server (libmicrohttpd + our router and
// limits) over a unix socket. The server must answer or close, never crash or hang.
#include "drive_socket.hh"
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
    strata::fuzz::drive_socket(&w.loop, w.path, data, size);
    return 0;
}
