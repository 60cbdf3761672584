#include "http_client/async_client.hh"

#include "http_client/transfer.hh"

#include <fmt/format.h>
#include <unordered_map>
#include <unordered_set>

namespace strata::http_client {

namespace {

// User callbacks run from libuv's C frames: an exception must not unwind through them.
void invoke(AsyncClient::Callback& done, Result result) noexcept {
    done(std::move(result));
}

} // namespace

// Lives on the heap until libuv has closed every handle that points to it, which happens on a
// loop iteration after ~AsyncClient.
struct AsyncClient::Impl {
    struct Socket {
        uv_poll_t poll;
        curl_socket_t fd;
        Impl* impl;
    };
    struct Pending {
        std::unique_ptr<detail::Transfer> transfer;
        Callback done;
    };

    uv_loop_t* loop;
    Target target;
    Options options;
    CURLM* multi = nullptr;
    uv_timer_t timer;
    std::vector<detail::EasyPtr> idle;
    std::unordered_map<CURL*, Pending> inflight;
    std::unordered_set<Socket*> sockets;
    int open_handles = 0;
    bool closing = false;
    std::vector<Callback> late; // request() calls made while closing

    Impl(uv_loop_t* l, Target t, Options o)
        : loop(l), target(std::move(t)), options(std::move(o)) {}

    void handle_closed() {
        if (--open_handles == 0 && closing) delete this;
    }

    static void on_timer_closed(uv_handle_t* h) { static_cast<Impl*>(h->data)->handle_closed(); }

    static void on_socket_closed(uv_handle_t* h) {
        auto* sock = static_cast<Socket*>(h->data);
        Impl* impl = sock->impl;
        delete sock;
        impl->handle_closed();
    }

    void close_socket(Socket* sock) {
        sockets.erase(sock);
        uv_poll_stop(&sock->poll);
        uv_close(reinterpret_cast<uv_handle_t*>(&sock->poll), on_socket_closed);
    }

    // CURLMOPT_SOCKETFUNCTION: libcurl says which events it wants on which socket.
    static int on_curl_socket(CURL*, curl_socket_t fd, int what, void* userp, void* socketp) {
        auto* impl = static_cast<Impl*>(userp);
        auto* sock = static_cast<Socket*>(socketp);
        if (what == CURL_POLL_REMOVE) {
            if (sock) {
                impl->close_socket(sock);
                if (!impl->closing) curl_multi_assign(impl->multi, fd, nullptr);
            }
            return 0;
        }
        if (!sock) {
            sock = new (std::nothrow) Socket{};
            if (!sock) return -1;
            sock->fd = fd;
            sock->impl = impl;
            if (uv_poll_init_socket(impl->loop, &sock->poll, fd) != 0) {
                delete sock;
                return -1;
            }
            sock->poll.data = sock;
            ++impl->open_handles;
            impl->sockets.insert(sock);
            curl_multi_assign(impl->multi, fd, sock);
        }
        int events = 0;
        if (what & CURL_POLL_IN) events |= UV_READABLE;
        if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
        return uv_poll_start(&sock->poll, events, on_poll) == 0 ? 0 : -1;
    }

    // CURLMOPT_TIMERFUNCTION: libcurl wants socket_action(TIMEOUT) after timeout_ms.
    static int on_curl_timer(CURLM*, long timeout_ms, void* userp) {
        auto* impl = static_cast<Impl*>(userp);
        if (timeout_ms < 0) {
            uv_timer_stop(&impl->timer);
        } else {
            // 0 means "now", but not from inside this callback: the next loop turn is soon enough.
            uv_timer_start(&impl->timer, on_timer, uint64_t(timeout_ms), 0);
        }
        return 0;
    }

    static void on_poll(uv_poll_t* h, int status, int events) {
        auto* sock = static_cast<Socket*>(h->data);
        Impl* impl = sock->impl;
        int flags = 0;
        if (status < 0) {
            flags = CURL_CSELECT_ERR;
        } else {
            if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
            if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
        }
        int running = 0;
        curl_multi_socket_action(impl->multi, sock->fd, flags, &running);
        impl->deliver_finished();
    }

    static void on_timer(uv_timer_t* h) {
        auto* impl = static_cast<Impl*>(h->data);
        int running = 0;
        curl_multi_socket_action(impl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        impl->deliver_finished();
    }

    // Collects finished transfers first and runs their callbacks last: a callback may start new
    // requests or even destroy the client, and neither may happen under libcurl's feet.
    void deliver_finished() {
        std::vector<std::pair<Callback, Result>> finished;
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL* easy = msg->easy_handle;
            CURLcode code = msg->data.result;
            curl_multi_remove_handle(multi, easy);
            auto it = inflight.find(easy);
            if (it == inflight.end()) continue;
            Pending p = std::move(it->second);
            inflight.erase(it);
            Result result = p.transfer->finish(code);
            detail::EasyPtr handle = p.transfer->release();
            if (idle.size() < options.max_connections) idle.push_back(std::move(handle));
            finished.emplace_back(std::move(p.done), std::move(result));
        }
        // Idle clients do not keep uv_run() alive (stratactl runs its loop until it is done).
        if (inflight.empty()) uv_unref(reinterpret_cast<uv_handle_t*>(&timer));
        for (auto& [done, result] : finished)
            invoke(done, std::move(result));
    }
};

AsyncClient::AsyncClient(uv_loop_t* loop, std::string_view target, Options options) {
    if (!loop) throw Error(ErrorKind::invalid_argument, "AsyncClient needs a uv loop");
    detail::global_init();
    auto impl = std::make_unique<Impl>(loop, Target::parse(target), std::move(options));
    impl->multi = curl_multi_init();
    if (!impl->multi) throw Error(ErrorKind::internal, "curl_multi_init failed");
    CURLM* m = impl->multi;
    long max_conns = long(std::max<std::size_t>(1, impl->options.max_connections));
    if (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &Impl::on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(m, CURLMOPT_SOCKETDATA, impl.get()) != CURLM_OK ||
        curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &Impl::on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(m, CURLMOPT_TIMERDATA, impl.get()) != CURLM_OK ||
        curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, max_conns) != CURLM_OK ||
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, max_conns) != CURLM_OK) {
        curl_multi_cleanup(m);
        throw Error(ErrorKind::internal, "curl_multi_setopt failed");
    }
    if (int rc = uv_timer_init(loop, &impl->timer); rc != 0) {
        curl_multi_cleanup(m);
        throw Error(ErrorKind::internal, fmt::format("uv_timer_init: {}", uv_strerror(rc)));
    }
    impl->timer.data = impl.get();
    impl->open_handles = 1;
    uv_unref(reinterpret_cast<uv_handle_t*>(&impl->timer));
    impl_ = impl.release();
}

AsyncClient::~AsyncClient() {
    Impl* impl = impl_;
    impl->closing = true;
    std::vector<std::pair<Callback, std::string>> cancelled;
    for (auto& [easy, p] : impl->inflight) {
        curl_multi_remove_handle(impl->multi, easy);
        cancelled.emplace_back(std::move(p.done), p.transfer->describe());
    }
    impl->inflight.clear();
    impl->idle.clear();
    curl_multi_cleanup(impl->multi); // closes the cached connections
    impl->multi = nullptr;
    for (Impl::Socket* s : std::vector<Impl::Socket*>(impl->sockets.begin(), impl->sockets.end())) {
        impl->close_socket(s);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&impl->timer), Impl::on_timer_closed);
    // From here on `impl` only waits for its close callbacks; callbacks below may still call
    // request(), which lands in impl->late.
    for (auto& [done, what] : cancelled) {
        invoke(done, Result{Error(ErrorKind::cancelled, what + ": cancelled, client closed"), {}});
    }
    while (!impl->late.empty()) {
        Callback done = std::move(impl->late.back());
        impl->late.pop_back();
        invoke(done, Result{Error(ErrorKind::cancelled, "request on a closed client"), {}});
    }
}

void AsyncClient::request(Request request, Callback done) {
    detail::validate(request);
    Impl* impl = impl_;
    if (impl->closing) {
        impl->late.push_back(std::move(done));
        return;
    }
    detail::EasyPtr easy;
    if (!impl->idle.empty()) {
        easy = std::move(impl->idle.back());
        impl->idle.pop_back();
    } else {
        easy = detail::new_easy();
    }
    auto transfer = std::make_unique<detail::Transfer>(std::move(easy), impl->target, impl->options,
                                                       std::move(request));
    CURL* h = transfer->easy();
    impl->inflight.emplace(h, Impl::Pending{std::move(transfer), std::move(done)});
    if (CURLMcode mc = curl_multi_add_handle(impl->multi, h); mc != CURLM_OK) {
        impl->inflight.erase(h);
        throw Error(ErrorKind::internal,
                    fmt::format("curl_multi_add_handle: {}", curl_multi_strerror(mc)));
    }
    uv_ref(reinterpret_cast<uv_handle_t*>(&impl->timer));
}

void AsyncClient::get(std::string_view path, Callback done) {
    request(Request{"GET", std::string(path), {}, {}, std::nullopt}, std::move(done));
}

void AsyncClient::post_json(std::string_view path, const nlohmann::json& body, Callback done) {
    request(Request{"POST",
                    std::string(path),
                    {{"Content-Type", "application/json"}, {"Accept", "application/json"}},
                    body.dump(),
                    std::nullopt},
            std::move(done));
}

std::size_t AsyncClient::pending() const {
    return impl_->inflight.size();
}

const Target& AsyncClient::target() const {
    return impl_->target;
}

} // namespace strata::http_client
