#include "front.hh"

#include "log/log.hh"
#include "request_id.hh"
#include "static_files.hh"

#include <algorithm>

namespace strata::gatewayd {

Front::Front(uv_loop_t* loop) : loop_(loop), timer_(new uv_timer_t) {
    uv_timer_init(loop_, timer_);
    timer_->data = this;
}

Front::~Front() {
    shutdown();
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void Front::shutdown() {
    uv_timer_stop(timer_);
    // Requests in flight hold their generation (through their reply), so the proxies are
    // destroyed here, not left to the last reference: their clients live on the loop.
    for (auto& g : retired_)
        g->proxy.reset();
    retired_.clear();
    if (current_) current_->proxy.reset();
    current_.reset();
}

void Front::serve(std::unique_ptr<Generation> next) {
    if (current_) retired_.push_back(std::move(current_));
    current_ = std::move(next);
    if (!retired_.empty() && !uv_is_active(reinterpret_cast<uv_handle_t*>(timer_)))
        uv_timer_start(
            timer_, [](uv_timer_t* t) { static_cast<Front*>(t->data)->drain(); }, 200, 200);
}

void Front::drain() {
    // Only the list holds a generation whose requests are all answered.
    auto idle = [](const std::shared_ptr<Generation>& g) { return g.use_count() == 1; };
    auto n = std::count_if(retired_.begin(), retired_.end(), idle);
    if (n) {
        std::erase_if(retired_, idle);
        log::info("previous routes released ({} generation(s) still finishing requests)",
                  retired_.size());
    }
    if (retired_.empty()) uv_timer_stop(timer_);
}

void Front::install(http::Router& router) {
    router.add_async("GET", "/healthz",
                     [this](http::Request& r, http::Reply reply) { answer(r, reply, true); });
    auto entry = [this](http::Request& r, http::Reply reply) { answer(r, reply, false); };
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
        router.add_async(m, "/", entry);
        router.add_async(m, "/{path...}", entry);
    }
}

void Front::answer(http::Request& r, const http::Reply& reply, bool healthz) {
    auto rec = std::make_shared<AccessRecord>();
    auto rid = r.header("X-Request-Id");
    rec->request_id = rid && request_id_ok(*rid) ? std::string(*rid) : new_request_id();
    if (log_) { // only the log reads these: without one, no copies per request
        rec->remote = r.remote_address;
        rec->method = r.method;
        rec->target = r.target.empty() ? r.path : r.target;
        rec->host = std::string(r.header("Host").value_or(""));
        rec->user_agent = std::string(r.header("User-Agent").value_or(""));
        if (auto ref = r.header("Referer")) rec->referer = std::string(*ref);
    }
    const bool head = r.method == "HEAD";
    // The generation rides with the answer: a reload meanwhile does not free its proxy.
    std::shared_ptr<Generation> gen = current_;
    http::Reply out([this, rec, gen, reply, head](http::Response resp) {
        if (!resp.headers.count("X-Request-Id"))
            resp.headers.emplace("X-Request-Id", rec->request_id);
        rec->status = resp.status;
        rec->bytes = head || resp.status == 204 || resp.status == 304 ? 0 : resp.body_size();
        if (log_) log_->write(*rec);
        reply(std::move(resp));
    });
    try {
        if (healthz) {
            out(http::Response::json(200, {{"status", "ok"}}));
            return;
        }
        if (!gen || !gen->proxy) throw http::Error(503, "unavailable", "the gateway is stopping");
        if (!gen->filter.admits(r.remote_address))
            throw http::Error(403, "forbidden", "this gateway does not serve your address");
        if (gen->proxy->handle(r, out, rec)) return;
        if (r.method != "GET" && r.method != "HEAD")
            throw http::Error(404, "not_found", "no route for " + r.path);
        auto it = r.params.find("path");
        out(serve_static(gen->web_root, it == r.params.end() ? "" : it->second));
    } catch (const http::Error& e) {
        out(e.response());
    } catch (const std::exception& e) {
        log::error("request {}: {}", rec->request_id, e.what());
        out(http::Response::error(500, "internal", "internal error"));
    }
}

void Front::log_unrouted(const http::Exchange& x) {
    if (!log_ || !x.route.empty()) return;
    const http::Request& r = x.request;
    AccessRecord rec;
    rec.started -= std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(x.seconds));
    rec.request_id = new_request_id();
    rec.remote = r.remote_address;
    rec.method = r.method.empty() ? "-" : r.method;
    rec.target = r.target.empty() ? r.path : r.target;
    rec.host = std::string(r.header("Host").value_or(""));
    rec.user_agent = std::string(r.header("User-Agent").value_or(""));
    if (auto ref = r.header("Referer")) rec.referer = std::string(*ref);
    rec.status = x.status;
    rec.bytes = x.body_bytes;
    log_->write(rec);
}

} // namespace strata::gatewayd
