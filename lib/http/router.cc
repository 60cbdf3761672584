#include "http/router.hh"

#include <atomic>
#include <exception>
#include <future>

namespace strata::http {

Response guarded(const std::function<Response()>& fn) {
    try {
        return fn();
    } catch (const Error& e) {
        return e.response();
    } catch (const std::exception& e) {
        return Response::error(500, "internal", e.what());
    }
}

struct Reply::Slot {
    explicit Slot(Deliver d) : deliver(std::move(d)) {}
    ~Slot() {
        if (!answered.exchange(true))
            deliver(Response::error(500, "internal", "the request was dropped unanswered"));
    }
    Deliver deliver;
    std::atomic<bool> answered{false};
};

Reply::Reply(Deliver deliver) : slot_(std::make_shared<Slot>(std::move(deliver))) {}

void Reply::operator()(Response response) const {
    if (!slot_->answered.exchange(true)) slot_->deliver(std::move(response));
}

void start_async(const AsyncHandler& handler, Request& request, const Reply& reply) {
    try {
        handler(request, reply);
    } catch (const Error& e) {
        reply(e.response());
    } catch (const std::exception& e) {
        reply(Response::error(500, "internal", e.what()));
    }
}

Response call_async(const AsyncHandler& handler, Request& request) {
    std::promise<Response> answer;
    std::future<Response> got = answer.get_future();
    start_async(handler, request, Reply([&answer](Response r) { answer.set_value(std::move(r)); }));
    return got.get();
}

namespace {
std::vector<std::string_view> split(std::string_view path) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < path.size()) {
        if (path[i] == '/') {
            ++i;
            continue;
        }
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        out.push_back(path.substr(i, j - i));
        i = j;
    }
    return out;
}

bool is_param(std::string_view seg) {
    return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
}
} // namespace

void Router::add(std::string method, std::string pattern, Handler handler) {
    Route r{std::move(method), pattern, {}, std::move(handler)};
    for (auto seg : split(pattern))
        r.segments.emplace_back(seg);
    routes_.push_back(std::move(r));
}

bool Router::match(const Route& route, const std::vector<std::string_view>& path,
                   std::map<std::string, std::string>& params) {
    params.clear();
    for (size_t i = 0; i < route.segments.size(); ++i) {
        std::string_view seg = route.segments[i];
        bool rest = is_param(seg) && seg.size() > 5 && seg.substr(seg.size() - 4) == "...}";
        if (rest) {
            std::string joined;
            for (size_t j = i; j < path.size(); ++j)
                joined += (j > i ? "/" : "") + std::string(path[j]);
            if (joined.empty()) return false;
            params[std::string(seg.substr(1, seg.size() - 5))] = joined;
            return true;
        }
        if (i >= path.size()) return false;
        if (is_param(seg))
            params[std::string(seg.substr(1, seg.size() - 2))] = std::string(path[i]);
        else if (seg != path[i])
            return false;
    }
    return route.segments.size() == path.size();
}

void Router::add_blocking(std::string method, std::string pattern, Handler handler) {
    add(std::move(method), std::move(pattern), std::move(handler));
    routes_.back().blocking = true;
}

void Router::add_async(std::string method, std::string pattern, AsyncHandler handler) {
    add(std::move(method), std::move(pattern), nullptr);
    routes_.back().async = std::move(handler);
}

void Router::add_stream(std::string method, std::string pattern, StreamHandler handler,
                        std::uint64_t max_body_bytes, bool blocking_finish) {
    Route r{std::move(method), pattern,        {}, nullptr, std::move(handler),
            max_body_bytes,    blocking_finish};
    for (auto seg : split(pattern))
        r.segments.emplace_back(seg);
    routes_.push_back(std::move(r));
}

RouteMatch Router::resolve(Request& request) const {
    auto path = split(request.path);
    std::string allow;
    std::map<std::string, std::string> params;
    for (const auto& route : routes_) {
        if (!match(route, path, params)) continue;
        bool head_as_get = request.method == "HEAD" && route.method == "GET";
        if (route.method != request.method && !head_as_get) {
            if (allow.find(route.method) == std::string::npos)
                allow += (allow.empty() ? "" : ", ") + route.method;
            continue;
        }
        request.params = std::move(params);
        RouteMatch m;
        m.pattern = &route.pattern;
        m.blocking = route.blocking;
        if (route.stream) {
            m.stream = &route.stream;
            m.stream_max_body = route.stream_max_body;
        } else if (route.async) {
            m.async = &route.async;
        } else {
            m.handler = &route.handler;
        }
        return m;
    }
    RouteMatch m;
    if (!allow.empty()) {
        m.error = Response::error(405, "method_not_allowed",
                                  request.method + " is not allowed on " + request.path);
        m.error->headers.emplace("Allow", allow);
    } else {
        m.error = Response::error(404, "not_found", "no route for " + request.path);
    }
    return m;
}

Response Router::dispatch(Request& request) const {
    RouteMatch m = resolve(request);
    if (m.error) return std::move(*m.error);
    if (m.stream) { // a streaming route called with a whole body (tests, internal calls)
        return guarded([&] {
            auto sink = (*m.stream)(request);
            sink->data(request.body);
            return sink->finish();
        });
    }
    if (m.async) return call_async(*m.async, request);
    return guarded([&] { return (*m.handler)(request); });
}

} // namespace strata::http
