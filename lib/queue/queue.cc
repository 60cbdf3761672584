#include "queue/queue.hh"

#include "lmdb/cursor.hh"
#include "queue/record.hh"

#include <algorithm>
#include <stdexcept>

namespace strata::queue {

using detail::Record;
using lmdb::Cursor;
using lmdb::Txn;

namespace {
constexpr std::size_t reap_batch = 256;   // expired leases handled per transaction
constexpr std::size_t forget_batch = 16;  // expired idempotency keys dropped per enqueue
constexpr std::size_t max_key_size = 255; // idempotency key (an LMDB key is <= 511 bytes)
constexpr std::size_t max_reason_size = 4096;
constexpr std::string_view expired_reason = "lease expired";

TimePoint to_time(std::int64_t ms) {
    return TimePoint(std::chrono::milliseconds(ms));
}

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

// splitmix64: spreads (id, attempt) into a uniform 64-bit value for the jitter.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

lmdb::EnvOptions dir_env_options() {
    lmdb::EnvOptions o;
    o.max_dbs = 64;
    return o;
}
} // namespace

Queue::Queue(lmdb::Env& env, std::string_view name, Options opts)
    : env_(&env), name_(name), opts_(std::move(opts)) {
    init();
}

Queue::Queue(const std::filesystem::path& dir, std::string_view name, Options opts)
    : owned_(std::make_unique<lmdb::Env>(dir, dir_env_options())), env_(owned_.get()), name_(name),
      opts_(std::move(opts)) {
    init();
}

Queue::~Queue() = default;

void Queue::init() {
    if (!valid_name(name_))
        throw std::invalid_argument("queue: invalid name \"" + name_ + "\" ([A-Za-z0-9_-]{1,64})");
    if (opts_.visibility_timeout.count() <= 0)
        throw std::invalid_argument("queue: visibility_timeout must be positive");
    if (opts_.backoff_base.count() < 0 || opts_.backoff_max < opts_.backoff_base)
        throw std::invalid_argument("queue: need 0 <= backoff_base <= backoff_max");
    if (!(opts_.jitter >= 0.0 && opts_.jitter <= 1.0))
        throw std::invalid_argument("queue: jitter must be within 0..1");
    if (opts_.idempotency_retention.count() < 0)
        throw std::invalid_argument("queue: idempotency_retention must not be negative");
    if (env_->flags() & (MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC | MDB_RDONLY))
        throw std::invalid_argument("queue: the LMDB environment must be writable and synced");

    const std::string prefix = "queue." + name_ + ".";
    env_->write([&](Txn& t) {
        items_ = t.open_dbi(prefix + "items", MDB_CREATE);
        payloads_ = t.open_dbi(prefix + "payloads", MDB_CREATE);
        pending_ = t.open_dbi(prefix + "pending", MDB_CREATE);
        leased_ = t.open_dbi(prefix + "leased", MDB_CREATE);
        dead_ = t.open_dbi(prefix + "dead", MDB_CREATE);
        idem_ = t.open_dbi(prefix + "idem", MDB_CREATE);
        meta_ = t.open_dbi(prefix + "meta", MDB_CREATE);
    });
}

std::int64_t Queue::now_ms() const {
    const TimePoint t = opts_.clock ? opts_.clock() : std::chrono::system_clock::now();
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

bool Queue::exhausted(std::uint32_t attempts) const noexcept {
    return opts_.max_attempts != 0 && attempts >= opts_.max_attempts;
}

std::chrono::milliseconds Queue::retry_delay(std::uint64_t id, std::uint32_t attempt) const {
    const std::int64_t base = opts_.backoff_base.count(), max = opts_.backoff_max.count();
    std::int64_t d = max;
    const std::uint32_t shift = attempt == 0 ? 0 : attempt - 1;
    if (shift < 62 && base <= (max >> shift)) d = base << shift; // base * 2^shift <= max
    if (opts_.jitter > 0.0) {
        const double u = static_cast<double>(mix(id * 0x100000001b3ULL ^ attempt) >> 11) /
                         static_cast<double>(std::uint64_t{1} << 53); // [0, 1)
        d -= static_cast<std::int64_t>(static_cast<double>(d) * opts_.jitter * u);
    }
    return std::chrono::milliseconds(d);
}

std::optional<Record> Queue::load(Txn& t, std::uint64_t id) const {
    auto v = t.get(items_, detail::id_key(id));
    if (!v) return std::nullopt;
    return detail::decode(*v);
}

void Queue::store(Txn& t, std::uint64_t id, const Record& r) const {
    t.put(items_, detail::id_key(id), detail::encode(r));
}

std::uint64_t Queue::bump(Txn& t, std::string_view counter) const {
    std::uint64_t next = 1;
    if (auto v = t.get(meta_, counter)) next = detail::get_be64(*v, 0);
    t.put(meta_, counter, detail::id_key(next + 1));
    return next;
}

// The item's record if `lease` still holds it.
std::optional<Record> Queue::held(Txn& t, const Lease& lease) const {
    auto r = load(t, lease.id);
    if (!r || r->state != State::leased || r->token != lease.lease_token || lease.lease_token == 0)
        return std::nullopt;
    return r;
}

void Queue::make_pending(Txn& t, std::uint64_t id, Record& r, std::int64_t at) const {
    r.state = State::pending;
    r.token = 0;
    r.due_ms = at;
    store(t, id, r);
    t.put(pending_, detail::time_id_key(at, id), {});
}

void Queue::make_dead(Txn& t, std::uint64_t id, Record& r, std::int64_t now,
                      std::string_view reason) const {
    r.state = State::dead;
    r.token = 0;
    r.due_ms = now;
    r.reason.assign(reason.substr(0, max_reason_size));
    store(t, id, r);
    t.put(dead_, detail::id_key(id), {});
}

void Queue::remove(Txn& t, std::uint64_t id) const {
    const std::string k = detail::id_key(id);
    t.del(items_, k);
    t.del(payloads_, k);
}

std::uint64_t Queue::enqueue(std::string_view payload, std::string_view key,
                             std::chrono::milliseconds delay) {
    return env_->write([&](Txn& t) { return enqueue(t, payload, key, delay); });
}

std::uint64_t Queue::enqueue(Txn& t, std::string_view payload, std::string_view key,
                             std::chrono::milliseconds delay) {
    // A foreign or read-only transaction would write nowhere or into another Env's dbis.
    if (!t.active() || t.readonly() || &t.env() != env_)
        throw std::invalid_argument("queue: enqueue needs an active write transaction of the "
                                    "queue's Env");
    if (key.size() > max_key_size)
        throw std::invalid_argument("queue: idempotency key longer than 255 bytes");
    if (delay.count() < 0) throw std::invalid_argument("queue: negative delay");
    const std::int64_t now = now_ms();
    const std::string kkey = "k" + std::string(key);
    forget_expired_keys(t, now, forget_batch);
    if (!key.empty()) {
        if (auto v = t.get(idem_, kkey)) {
            const std::uint64_t id = detail::get_be64(*v, 0);
            const auto created = static_cast<std::int64_t>(detail::get_be64(*v, 8));
            if (now - created < opts_.idempotency_retention.count()) return id;
            std::string ekey = "e";
            detail::put_be64(ekey, static_cast<std::uint64_t>(created));
            t.del(idem_, ekey + std::string(key)); // expired: the key starts afresh
        }
    }
    const std::uint64_t id = bump(t, "next_id");
    Record r;
    r.enqueued_ms = now;
    make_pending(t, id, r, now + delay.count());
    t.put(payloads_, detail::id_key(id), payload);
    if (!key.empty()) {
        std::string v = detail::id_key(id);
        detail::put_be64(v, static_cast<std::uint64_t>(now));
        t.put(idem_, kkey, v);
        std::string ekey = "e";
        detail::put_be64(ekey, static_cast<std::uint64_t>(now));
        t.put(idem_, ekey + std::string(key), {});
    }
    return id;
}

// Drops up to `limit` idempotency keys whose retention ended, oldest first.
void Queue::forget_expired_keys(Txn& t, std::int64_t now, std::size_t limit) const {
    Cursor c(t, idem_);
    for (std::size_t n = 0; n < limit; ++n) {
        auto e = c.seek("e");
        if (!e || e->first.size() < 9 || e->first[0] != 'e') return;
        const auto created = static_cast<std::int64_t>(detail::get_be64(e->first, 1));
        if (now - created < opts_.idempotency_retention.count()) return;
        const std::string key(e->first.substr(9));
        c.del();
        t.del(idem_, "k" + key);
    }
}

// Whether lease() would change anything: a visible pending item or an expired lease. Polling
// an idle queue then costs a read transaction, not a write and its fsync.
bool Queue::has_work(std::int64_t now) const {
    return env_->read([&](Txn& t) {
        Cursor p(t, pending_);
        if (auto e = p.first(); e && detail::parse_time_id_key(e->first).first <= now) return true;
        Cursor l(t, leased_);
        if (auto e = l.first(); e && detail::parse_time_id_key(e->first).first <= now) return true;
        return false;
    });
}

std::optional<Lease> Queue::lease() {
    if (!has_work(now_ms())) return std::nullopt;
    for (;;) {
        const std::int64_t now = now_ms();
        bool more = false;
        auto got = env_->write([&](Txn& t) {
            more = reap_expired(t, now, reap_batch) == reap_batch;
            return lease_first(t, now);
        });
        if (got || !more) return got;
    }
}

std::size_t Queue::reap() {
    std::size_t total = 0;
    for (;;) {
        const std::int64_t now = now_ms();
        const std::size_t n = env_->write([&](Txn& t) { return reap_expired(t, now, reap_batch); });
        total += n;
        if (n < reap_batch) return total;
    }
}

// Expired leases, oldest first: the attempt counted; retry at once or dead-letter.
std::size_t Queue::reap_expired(Txn& t, std::int64_t now, std::size_t limit) const {
    Cursor c(t, leased_);
    std::size_t n = 0;
    for (; n < limit; ++n) {
        auto e = c.first();
        if (!e) break;
        const auto [expires, id] = detail::parse_time_id_key(e->first);
        if (expires > now) break;
        c.del();
        auto r = load(t, id);
        if (!r) continue; // index without item: nothing to return
        r->reason = expired_reason;
        if (exhausted(r->attempts))
            make_dead(t, id, *r, now, expired_reason);
        else
            make_pending(t, id, *r, expires);
    }
    return n;
}

std::optional<Lease> Queue::lease_first(Txn& t, std::int64_t now) const {
    Cursor c(t, pending_);
    for (;;) {
        auto e = c.first();
        if (!e) return std::nullopt;
        const auto [visible_at, id] = detail::parse_time_id_key(e->first);
        if (visible_at > now) return std::nullopt;
        c.del();
        auto r = load(t, id);
        if (!r) continue;
        r->state = State::leased;
        r->attempts += 1;
        r->token = bump(t, "next_token");
        r->due_ms = now + opts_.visibility_timeout.count();
        store(t, id, *r);
        t.put(leased_, detail::time_id_key(r->due_ms, id), {});
        Lease l;
        l.id = id;
        if (auto p = t.get(payloads_, detail::id_key(id))) l.payload.assign(*p);
        l.attempt = r->attempts;
        l.lease_token = r->token;
        l.expires_at = to_time(r->due_ms);
        return l;
    }
}

bool Queue::ack(const Lease& lease) {
    return env_->write([&](Txn& t) {
        auto r = held(t, lease);
        if (!r) return false;
        t.del(leased_, detail::time_id_key(r->due_ms, lease.id));
        remove(t, lease.id);
        return true;
    });
}

bool Queue::nack(const Lease& lease, std::string_view reason) {
    const std::int64_t now = now_ms();
    return env_->write([&](Txn& t) {
        auto r = held(t, lease);
        if (!r) return false;
        t.del(leased_, detail::time_id_key(r->due_ms, lease.id));
        if (exhausted(r->attempts)) {
            make_dead(t, lease.id, *r, now, reason);
        } else {
            r->reason.assign(reason.substr(0, max_reason_size));
            make_pending(t, lease.id, *r, now + retry_delay(lease.id, r->attempts).count());
        }
        return true;
    });
}

bool Queue::bury(const Lease& lease, std::string_view reason) {
    const std::int64_t now = now_ms();
    return env_->write([&](Txn& t) {
        auto r = held(t, lease);
        if (!r) return false;
        t.del(leased_, detail::time_id_key(r->due_ms, lease.id));
        make_dead(t, lease.id, *r, now, reason);
        return true;
    });
}

bool Queue::extend(Lease& lease) {
    const std::int64_t now = now_ms();
    const bool ok = env_->write([&](Txn& t) {
        auto r = held(t, lease);
        if (!r) return false;
        t.del(leased_, detail::time_id_key(r->due_ms, lease.id));
        r->due_ms = now + opts_.visibility_timeout.count();
        store(t, lease.id, *r);
        t.put(leased_, detail::time_id_key(r->due_ms, lease.id), {});
        return true;
    });
    if (ok) lease.expires_at = to_time(now + opts_.visibility_timeout.count());
    return ok;
}

ItemInfo Queue::info(Txn& t, std::uint64_t id, const Record& r) const {
    ItemInfo i;
    i.id = id;
    i.state = r.state;
    i.attempts = r.attempts;
    i.enqueued_at = to_time(r.enqueued_ms);
    i.due = to_time(r.due_ms);
    i.last_error = r.reason;
    if (auto p = t.get(payloads_, detail::id_key(id))) i.payload.assign(*p);
    return i;
}

std::optional<ItemInfo> Queue::find(std::uint64_t id) const {
    return env_->read([&](Txn& t) -> std::optional<ItemInfo> {
        auto r = load(t, id);
        if (!r) return std::nullopt;
        return info(t, id, *r);
    });
}

Counts Queue::counts() const {
    const std::int64_t now = now_ms();
    return env_->read([&](Txn& t) {
        Counts c;
        c.leased = t.entries(leased_);
        c.dead = t.entries(dead_);
        Cursor cur(t, pending_);
        for (auto e : cur.from(detail::time_id_key(now + 1, 0))) {
            (void)e;
            ++c.delayed;
        }
        c.ready = t.entries(pending_) - c.delayed;
        return c;
    });
}

std::vector<ItemInfo> Queue::list_dead(std::uint64_t after_id, std::size_t limit) const {
    return env_->read([&](Txn& t) {
        std::vector<ItemInfo> out;
        if (after_id == UINT64_MAX) return out;
        Cursor c(t, dead_);
        for (auto [k, v] : c.from(detail::id_key(after_id + 1))) {
            if (out.size() >= limit) break;
            const std::uint64_t id = detail::parse_id_key(k);
            if (auto r = load(t, id)) out.push_back(info(t, id, *r));
        }
        return out;
    });
}

bool Queue::requeue_dead(std::uint64_t id) {
    const std::int64_t now = now_ms();
    return env_->write([&](Txn& t) {
        auto r = load(t, id);
        if (!r || r->state != State::dead) return false;
        t.del(dead_, detail::id_key(id));
        r->attempts = 0;
        make_pending(t, id, *r, now);
        return true;
    });
}

std::size_t Queue::requeue_dead() {
    const std::int64_t now = now_ms();
    return env_->write([&](Txn& t) {
        std::size_t n = 0;
        Cursor c(t, dead_);
        for (auto [k, v] : c.all()) {
            const std::uint64_t id = detail::parse_id_key(k);
            c.del();
            if (auto r = load(t, id)) {
                r->attempts = 0;
                make_pending(t, id, *r, now);
                ++n;
            }
        }
        return n;
    });
}

bool Queue::purge_dead(std::uint64_t id) {
    return env_->write([&](Txn& t) {
        auto r = load(t, id);
        if (!r || r->state != State::dead) return false;
        t.del(dead_, detail::id_key(id));
        remove(t, id);
        return true;
    });
}

std::size_t Queue::purge_dead() {
    return env_->write([&](Txn& t) {
        std::size_t n = 0;
        Cursor c(t, dead_);
        for (auto [k, v] : c.all()) {
            remove(t, detail::parse_id_key(k));
            c.del();
            ++n;
        }
        return n;
    });
}

bool Queue::cancel(std::uint64_t id) {
    return env_->write([&](Txn& t) {
        auto r = load(t, id);
        if (!r || r->state == State::leased) return false; // the lease holder decides
        if (r->state == State::pending)
            t.del(pending_, detail::time_id_key(r->due_ms, id));
        else
            t.del(dead_, detail::id_key(id));
        remove(t, id);
        return true;
    });
}

} // namespace strata::queue
