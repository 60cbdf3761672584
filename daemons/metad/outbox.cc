#include "outbox.hh"

#include "http_client/client.hh"
#include "log/log.hh"
#include "queue/queue.hh"

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace strata::metad {

namespace {

using nlohmann::json;

bool valid_sink_name(std::string_view n) {
    return !n.empty() && n.size() <= 32 && std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    });
}

queue::Options queue_options(const OutboxOptions& o) {
    queue::Options q;
    q.max_attempts = 0; // at-least-once: an event waits for its sink however long it is down
    q.backoff_base = o.backoff_base;
    q.backoff_max = o.backoff_max;
    q.jitter = 0.2;
    // Only a crashed process leaves a lease behind; a live one always acks or nacks.
    q.visibility_timeout =
        std::max<std::chrono::milliseconds>(std::chrono::seconds(30), 3 * o.request_timeout);
    return q;
}

http_client::Options client_options(const OutboxOptions& o) {
    http_client::Options c;
    c.timeout = o.request_timeout;
    c.connect_timeout =
        std::min<std::chrono::milliseconds>(o.request_timeout, std::chrono::seconds(5));
    c.max_connections = 1; // one delivery thread per sink
    c.max_response_bytes = 1 << 20;
    return c;
}

} // namespace

std::string event_json(const Event& e) {
    return json{
        {"id", std::to_string(e.id)},     {"type", e.type}, {"user", std::to_string(e.user)},
        {"node", std::to_string(e.node)}, {"time", e.time}, {"data", e.data}}
        .dump();
}

bool sink_wants(const EventSink& sink, std::string_view type) {
    return sink.types.empty() ||
           std::any_of(sink.types.begin(), sink.types.end(),
                       [&](const std::string& prefix) { return type.starts_with(prefix); });
}

struct Outbox::Sink {
    Sink(lmdb::Env& env, EventSink c, const OutboxOptions& o)
        : cfg(std::move(c)), queue(env, "events-" + cfg.name, queue_options(o)),
          client(cfg.target, client_options(o)), poll(o.poll_interval) {}

    void loop();
    bool deliver_one(); // false when no event was ready
    bool stopping() {
        std::lock_guard lk(mu);
        return stop;
    }

    EventSink cfg;
    queue::Queue queue;
    http_client::Client client;
    std::chrono::milliseconds poll;
    std::atomic<std::uint64_t> delivered{0}, failed{0};
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false, stop = false;
    std::thread thread;
};

bool Outbox::Sink::deliver_one() {
    auto lease = queue.lease();
    if (!lease) return false;
    std::string error, id;
    try {
        id = json::parse(lease->payload).at("id").get<std::string>();
        http_client::Request req;
        req.method = "POST";
        req.path = cfg.path;
        req.headers = {{"Idempotency-Key", "evt-" + id}, {"Content-Type", "application/json"}};
        req.body = lease->payload;
        auto res = client.try_request(std::move(req));
        if (res.error)
            error = res.error->what();
        else if (!res.response.ok())
            error = "HTTP " + std::to_string(res.response.status);
    } catch (const std::exception& e) { // a payload we cannot read: keep it, someone may fix it
        error = e.what();
    }
    if (error.empty()) {
        delivered++;
        if (!queue.ack(*lease))
            log::warning("outbox {}: lease of event {} expired: it will be sent again", cfg.name,
                         id);
        return true;
    }
    failed++;
    // Powers of two only: a sink that is down for hours must not flood the journal.
    if (std::has_single_bit(lease->attempt))
        log::warning("outbox {}: delivery of event {} failed (attempt {}): {}", cfg.name, id,
                     lease->attempt, error);
    (void)queue.nack(*lease, error);
    return true;
}

void Outbox::Sink::loop() {
    std::unique_lock lk(mu);
    while (!stop) {
        woken = false; // a wake() from now on means new events: look again after this round
        lk.unlock();
        try {
            while (!stopping() && deliver_one()) {
            }
        } catch (const std::exception& e) {
            log::error("outbox {}: {}", cfg.name, e.what()); // LMDB trouble: try again later
        }
        lk.lock();
        cv.wait_for(lk, poll, [&] { return stop || woken; });
    }
}

void check_sinks(const std::vector<EventSink>& sinks) {
    std::set<std::string> names;
    for (const auto& s : sinks) {
        if (!valid_sink_name(s.name))
            throw std::invalid_argument("outbox: sink name \"" + s.name +
                                        "\" is not [a-z0-9-]{1,32}");
        if (!names.insert(s.name).second)
            throw std::invalid_argument("outbox: sink \"" + s.name + "\" configured twice");
        if (!s.path.starts_with('/'))
            throw std::invalid_argument("outbox: sink \"" + s.name + "\" path must start with /");
        try {
            http_client::Target::parse(s.target);
        } catch (const http_client::Error& e) {
            throw std::invalid_argument("outbox: sink \"" + s.name + "\": " + e.what());
        }
    }
}

Outbox::Outbox(lmdb::Env& env, std::vector<EventSink> sinks, OutboxOptions opts) {
    check_sinks(sinks);
    for (auto& s : sinks)
        sinks_.push_back(std::make_unique<Sink>(env, std::move(s), opts));
}

Outbox::~Outbox() {
    stop();
}

void Outbox::emit(lmdb::Txn& txn, const Event& event) {
    if (event.type.empty()) throw std::invalid_argument("outbox: event without a type");
    if (sinks_.empty()) return;
    const std::string payload = event_json(event);
    // No queue idempotency key: the id is new in this very transaction, so the enqueue can
    // never be a retry, and the key's two index entries per event and sink cost pages in
    // every commit. Receivers deduplicate on the Idempotency-Key header (the event id).
    for (auto& s : sinks_)
        if (sink_wants(s->cfg, event.type)) s->queue.enqueue(txn, payload);
}

void Outbox::start() {
    for (auto& s : sinks_) {
        if (s->thread.joinable()) continue;
        s->stop = false; // the thread is not running: no lock needed
        s->thread = std::thread([p = s.get()] { p->loop(); });
    }
}

void Outbox::stop() {
    for (auto& s : sinks_) {
        {
            std::lock_guard lk(s->mu);
            s->stop = true;
        }
        s->cv.notify_all();
    }
    for (auto& s : sinks_)
        if (s->thread.joinable()) s->thread.join();
}

void Outbox::wake() {
    for (auto& s : sinks_) {
        {
            std::lock_guard lk(s->mu);
            s->woken = true;
        }
        s->cv.notify_all();
    }
}

std::vector<SinkStats> Outbox::stats() const {
    std::vector<SinkStats> out;
    for (const auto& s : sinks_)
        out.push_back({s->cfg.name, s->queue.counts(), s->delivered.load(), s->failed.load()});
    return out;
}

} // namespace strata::metad
