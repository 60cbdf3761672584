// The route table: METHOD + path pattern -> handler. Patterns are literal segments and
// {name} segments ("/v1/blocks/{sha256}"); a trailing "{name...}" takes the rest of the path.
#pragma once

#include "http/message.hh"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace strata::http {

using Handler = std::function<Response(Request&)>;

// Receives a request body piece by piece instead of as one string (uploads of any size).
// data() and finish() may throw http::Error. Destroying a sink without finish() means the
// request was aborted (client gone, limit hit): the sink must then drop what it kept.
class BodySink {
public:
    virtual ~BodySink() = default;
    virtual void data(std::string_view chunk) = 0;
    virtual Response finish() = 0;
};

// Called when the request headers are complete; returns the sink for the body, or throws
// http::Error to answer at once (before any body byte is read).
using StreamHandler = std::function<std::unique_ptr<BodySink>(Request&)>;

// The answer to an async route (Router::add_async): given once, later, from any thread.
// Copies share one answer; only the first call counts. When the last copy goes unanswered
// (a handler that lost it), the request gets a 500, so a client is never left hanging.
class Reply {
public:
    using Deliver = std::function<void(Response)>;
    explicit Reply(Deliver deliver);
    void operator()(Response response) const;

private:
    struct Slot;
    std::shared_ptr<Slot> slot_;
};

// Runs on the event loop with the whole request, starts the work and returns at once; the
// work answers through the Reply when it is done (e.g. from a durable-commit thread). What
// the handler throws is answered at once (http::Error's status, else 500).
using AsyncHandler = std::function<void(Request&, Reply)>;

// What a request resolved to: exactly one of handler, stream, async, or error is set.
struct RouteMatch {
    const Handler* handler = nullptr;
    const StreamHandler* stream = nullptr;
    const AsyncHandler* async = nullptr;
    const std::string* pattern = nullptr; // of the matched route (metrics labels)
    bool blocking = false;                // run the handler off the event loop
    std::uint64_t stream_max_body = 0;    // 0: the server's limit
    std::optional<Response> error;        // 404 / 405
};

// Runs fn; http::Error becomes its response, any other exception a 500.
Response guarded(const std::function<Response()>& fn);
// Runs an async route's handler; what it throws is answered through reply at once.
void start_async(const AsyncHandler& handler, Request& request, const Reply& reply);
// Runs an async route's handler and waits for its answer (tests, fuzzers, the content
// engine): only for handlers that answer without the calling thread's loop.
Response call_async(const AsyncHandler& handler, Request& request);

class Router {
public:
    void add(std::string method, std::string pattern, Handler handler);
    void get(std::string pattern, Handler h) { add("GET", std::move(pattern), std::move(h)); }
    void post(std::string pattern, Handler h) { add("POST", std::move(pattern), std::move(h)); }

    // A route whose handler may block for long (walks a store, reads a whole file, scans):
    // the general server runs it on libuv's thread pool, so the loop keeps serving and the
    // watchdog keeps being fed. The handler must be thread-safe.
    void add_blocking(std::string method, std::string pattern, Handler handler);

    // A route whose body is streamed to a sink; max_body_bytes (0: the server's limit)
    // replaces http.max_body_bytes for it, since uploads are larger than API calls.
    // blocking_finish: the sink's finish() may block (fsync): the general server runs it on
    // the thread pool like a blocking route (data() stays on the loop).
    void add_stream(std::string method, std::string pattern, StreamHandler handler,
                    std::uint64_t max_body_bytes = 0, bool blocking_finish = false);

    // A route answered asynchronously (see AsyncHandler): the general server suspends the
    // connection, the loop serves everyone else, and the Reply resumes it.
    void add_async(std::string method, std::string pattern, AsyncHandler handler);
    // Resolves the route and fills request.params.
    RouteMatch resolve(Request& request) const;

    // Finds the handler and runs it; 404 / 405 (with Allow) in the error shape otherwise.
    // Exceptions from handlers become 500 (or the http::Error's status).
    Response dispatch(Request& request) const;

private:
    struct Route {
        std::string method;
        std::string pattern;
        std::vector<std::string> segments;
        Handler handler;
        StreamHandler stream;
        std::uint64_t stream_max_body = 0;
        bool blocking = false;
        AsyncHandler async;
    };
    static bool match(const Route& route, const std::vector<std::string_view>& path,
                      std::map<std::string, std::string>& params);
    std::vector<Route> routes_;
};

} // namespace strata::http
