// Event outbox: every change's event is enqueued in the same LMDB transaction as the change
// (so an event exists exactly when its change committed) into one durable queue per sink,
// "events-" + sink name, and delivered at least once by one thread per sink:
//
//   POST sink.target + sink.path, body = the event JSON (see event_json),
//   headers Idempotency-Key: evt-<id>, Content-Type: application/json
//   2xx: acked; any other status or a transport error: nacked, retried after a backoff
//   (base * 2^(attempt-1), capped), never given up.
//
// Receivers must deduplicate on the Idempotency-Key: a crash between the POST and the ack,
// or a lost response, sends the event again. Events of one sink are not ordered across
// retries. With no sinks configured emit() stores nothing: there is nobody to deliver to.
#pragma once

#include "lmdb/env.hh"
#include "queue/types.hh"

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace strata::metad {

struct EventSink {
    std::string name;   // [a-z0-9-]{1,32}; names the queue, so keep it across restarts
    std::string target; // "unix:/run/strata/notifyd.sock" or "http://127.0.0.1:port"
    std::string path = "/v1/events";
    std::vector<std::string> types; // type prefixes like "file."; empty: every event
};

struct Event {
    std::uint64_t id = 0; // snowflake
    std::string type;     // "file.created", "file.ready", "share.added", ...
    std::uint64_t user = 0;
    std::uint64_t node = 0;
    std::int64_t time = 0; // unix ms
    nlohmann::json data = nlohmann::json::object();
};

struct OutboxOptions {
    std::chrono::milliseconds backoff_base = std::chrono::seconds(1);
    std::chrono::milliseconds backoff_max = std::chrono::minutes(5);
    std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
    std::chrono::milliseconds poll_interval = std::chrono::seconds(1); // without wake()
};

struct SinkStats {
    std::string name;
    queue::Counts queue;         // ready, delayed, leased, dead
    std::uint64_t delivered = 0; // 2xx answers since this Outbox was created
    std::uint64_t failed = 0;    // failed attempts since then
};

// {"id": "<decimal>", "type", "user": "<decimal>", "node": "<decimal>", "time", "data"}:
// ids as strings because JavaScript numbers lose precision above 2^53.
std::string event_json(const Event& e);
bool sink_wants(const EventSink& sink, std::string_view type);

// Throws std::invalid_argument naming the first sink that cannot work: a name outside
// [a-z0-9-]{1,32}, a name used twice, a path not starting with /, an unusable target.
void check_sinks(const std::vector<EventSink>& sinks);

class Outbox {
public:
    // Opens the sinks' queues; throws std::invalid_argument for a bad or repeated name or
    // a path not starting with '/', http_client::Error for a malformed target.
    Outbox(lmdb::Env& env, std::vector<EventSink> sinks, OutboxOptions opts = {});
    ~Outbox(); // stop()
    Outbox(const Outbox&) = delete;
    Outbox& operator=(const Outbox&) = delete;

    // Enqueues the event in txn (a write transaction of env) for every sink whose types
    // match (without a queue idempotency key: the event id is unique by construction).
    // Throws std::invalid_argument for an empty type.
    void emit(lmdb::Txn& txn, const Event& event);

    void start(); // starts the delivery threads (no-op if running)
    void stop();  // stops and joins them; an in-flight POST finishes first
    void wake();  // look for events now (call after committing a transaction that emitted)

    std::vector<SinkStats> stats() const;

private:
    struct Sink; // one sink's queue, client and thread
    std::vector<std::unique_ptr<Sink>> sinks_;
};

} // namespace strata::metad
