// libFuzzer target: raw bytes sent to the content engine (lib/http/content_server, the
// gateway's public side) over a unix socket, with the route kinds the gateway uses: async
// routes answered at once or from a loop timer, a Reply that is lost, a 101 that hands the
// connection over (and drops it), and a plain route. The server must answer or close, never
// crash or hang.
#include "drive_socket.hh"
#include "http/content_server.hh"
#include "http/listen.hh"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using strata::http::Reply;
using strata::http::Request;
using strata::http::Response;

// Answers from a zero timer: the Reply arrives on a later loop turn, as an upstream's does.
void reply_later(uv_loop_t* loop, Reply reply, Response response) {
    struct Later {
        uv_timer_t timer;
        Reply reply;
        Response response;
    };
    auto* l = new Later{{}, std::move(reply), std::move(response)};
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(
        &l->timer,
        [](uv_timer_t* t) {
            auto* l = static_cast<Later*>(t->data);
            l->reply(std::move(l->response));
            uv_close(reinterpret_cast<uv_handle_t*>(t),
                     [](uv_handle_t* h) { delete static_cast<Later*>(h->data); });
        },
        0, 0);
}

struct World {
    uv_loop_t loop{};
    strata::http::Router router;
    std::unique_ptr<strata::http::ContentServer> server;
    std::string path;

    World() {
        uv_loop_init(&loop);
        router.get("/healthz", [](Request&) { return Response::json(200, {{"status", "ok"}}); });
        for (const char* m : {"GET", "POST", "PUT", "DELETE"})
            router.add_async(m, "/a/{x...}", [this](Request& r, Reply reply) {
                auto resp = Response::text(200, r.method + " " + r.target + " " +
                                                    std::to_string(r.body.size()));
                if (r.params["x"].size() % 2)
                    reply(std::move(resp));
                else
                    reply_later(&loop, std::move(reply), std::move(resp));
            });
        router.add_async("GET", "/lost", [](Request&, Reply) {});
        router.add_async("GET", "/ws", [this](Request&, Reply reply) {
            Response resp;
            resp.status = 101;
            resp.headers.emplace("Upgrade", "websocket");
            resp.upgrade = [](std::unique_ptr<strata::http::Upgraded> up) {
                std::string early = up->take_early_bytes();
                (void)!::send(up->fd(), early.data(), early.size(), MSG_NOSIGNAL);
            }; // dropped: the connection closes
            reply_later(&loop, std::move(reply), std::move(resp));
        });
        strata::http::Limits limits;
        limits.max_header_bytes = 4096;
        limits.max_body_bytes = 2048;
        limits.idle_timeout_seconds = 1;
        server = std::make_unique<strata::http::ContentServer>(&loop, router, limits);
        path = "/tmp/strata-fuzz-content-" + std::to_string(getpid()) + ".sock";
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
