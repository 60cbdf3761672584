// Unit tests of strata::queue. Time is a fake clock (no sleeping); each test runs in its
// own process (Criterion forks) on its own temporary directory, removed by the fixture
// even when an assertion fails.

#include "lmdb/group_commit.hh"
#include "queue/queue.hh"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <criterion/criterion.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace strata;
using namespace strata::queue;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

static fs::path g_dir;
static pid_t g_child = -1;
static std::atomic<std::int64_t> g_now_ms{1'800'000'000'000}; // 2027-01-15

// Every queue write is fsync'ed; on tmpfs that costs nothing, so prefer /dev/shm to keep the
// tests fast. (kill -9 does not drop the page cache: the durability test stays meaningful.)
static fs::path scratch_root() {
    std::error_code ec;
    if (!getenv("TMPDIR") && fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    return fs::temp_directory_path();
}

static void setup() {
    std::string tmpl = (scratch_root() / "strata-queue-XXXXXX").string();
    cr_assert(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    g_dir = tmpl;
}

static void teardown() {
    if (g_child > 0) {
        kill(g_child, SIGKILL);
        waitpid(g_child, nullptr, 0);
    }
    std::error_code ec;
    if (!g_dir.empty()) fs::remove_all(g_dir, ec);
}

TestSuite(queue, .init = setup, .fini = teardown);

static void advance(std::chrono::milliseconds d) {
    g_now_ms += d.count();
}

static Options opts(std::uint32_t max_attempts = 5) {
    Options o;
    o.visibility_timeout = 10s;
    o.max_attempts = max_attempts;
    o.backoff_base = 1s;
    o.backoff_max = 5s;
    o.clock = [] { return TimePoint(std::chrono::milliseconds(g_now_ms.load())); };
    return o;
}

static bool same_counts(const Counts& c, std::uint64_t ready, std::uint64_t delayed,
                        std::uint64_t leased, std::uint64_t dead) {
    return c.ready == ready && c.delayed == delayed && c.leased == leased && c.dead == dead;
}

Test(queue, enqueue_lease_ack_fifo) {
    Queue q(g_dir, "jobs", opts());
    const auto a = q.enqueue("alpha"), b = q.enqueue("beta"), c = q.enqueue("gamma");
    cr_assert(a < b && b < c, "ids increase in enqueue order");
    auto l1 = q.lease(), l2 = q.lease();
    cr_assert(l1 && l2);
    cr_assert_eq(l1->id, a);
    cr_assert_eq(l1->payload, "alpha");
    cr_assert_eq(l1->attempt, 1u);
    cr_assert_eq(l2->id, b);
    cr_assert_neq(l1->lease_token, l2->lease_token);
    cr_assert(l1->expires_at == TimePoint(std::chrono::milliseconds(g_now_ms + 10000)));
    cr_assert(same_counts(q.counts(), 1, 0, 2, 0));
    cr_assert(q.ack(*l1));
    cr_assert(q.ack(*l2));
    cr_assert(!q.ack(*l2), "second ack of the same lease");
    cr_assert(!q.find(a) && !q.find(b), "acked items are gone");
    auto l3 = q.lease();
    cr_assert(l3 && l3->id == c && l3->payload == "gamma");
    cr_assert(!q.lease(), "nothing else visible");
    cr_assert(q.ack(*l3));
    cr_assert(same_counts(q.counts(), 0, 0, 0, 0));
}

Test(queue, delayed_items_become_visible_in_time_order) {
    Queue q(g_dir, "jobs", opts());
    const auto late = q.enqueue("late", {}, 5s);
    const auto now = q.enqueue("now");
    const auto soon = q.enqueue("soon", {}, 1s);
    cr_assert(same_counts(q.counts(), 1, 2, 0, 0));
    auto l = q.lease();
    cr_assert(l && l->id == now);
    cr_assert(!q.lease());
    advance(999ms);
    cr_assert(!q.lease(), "1 ms early");
    advance(1ms);
    l = q.lease();
    cr_assert(l && l->id == soon);
    advance(4s);
    l = q.lease();
    cr_assert(l && l->id == late);
    cr_assert(same_counts(q.counts(), 0, 0, 3, 0));
}

Test(queue, lease_expiry_makes_item_visible_again) {
    Queue q(g_dir, "jobs", opts());
    const auto id = q.enqueue("x");
    auto first = q.lease();
    cr_assert(first && first->attempt == 1);
    advance(9999ms);
    cr_assert(!q.lease(), "still leased");
    advance(1ms);
    auto second = q.lease();
    cr_assert(second, "visible again once the lease expired");
    cr_assert_eq(second->id, id);
    cr_assert_eq(second->attempt, 2u, "the expired lease counted as an attempt");
    cr_assert_neq(second->lease_token, first->lease_token);
    cr_assert_eq(q.find(id)->last_error, "lease expired");
    cr_assert(q.ack(*second));
}

Test(queue, expired_leases_dead_letter_after_max_attempts) {
    Queue q(g_dir, "jobs", opts(2));
    const auto id = q.enqueue("x");
    cr_assert(q.lease());
    advance(10s);
    auto l = q.lease();
    cr_assert(l && l->attempt == 2);
    advance(10s);
    cr_assert(!q.lease(), "attempts exhausted: dead, not leased");
    cr_assert(same_counts(q.counts(), 0, 0, 0, 1));
    auto dead = q.list_dead();
    cr_assert_eq(dead.size(), 1u);
    cr_assert_eq(dead[0].id, id);
    cr_assert(dead[0].state == State::dead);
    cr_assert_eq(dead[0].attempts, 2u);
    cr_assert_eq(dead[0].last_error, "lease expired");
    cr_assert_eq(dead[0].payload, "x");
}

Test(queue, reap_returns_expired_leases) {
    Queue q(g_dir, "jobs", opts(1));
    for (int i = 0; i < 300; ++i)
        q.enqueue(std::to_string(i)); // more than one reap batch
    std::vector<Lease> leases;
    while (auto l = q.lease())
        leases.push_back(*l);
    cr_assert_eq(leases.size(), 300u);
    cr_assert(same_counts(q.counts(), 0, 0, 300, 0), "expired but not reaped: still leased");
    advance(10s);
    cr_assert_eq(q.reap(), 300u);
    cr_assert(same_counts(q.counts(), 0, 0, 0, 300));
    cr_assert_eq(q.list_dead(0, 1000).size(), 300u);
    cr_assert_eq(q.list_dead(290, 1000).size(), 10u, "paging after an id");
    cr_assert_eq(q.list_dead(0, 5).size(), 5u, "limit");
    cr_assert_eq(q.reap(), 0u);
}

Test(queue, retry_backoff_timing) {
    Queue q(g_dir, "jobs", opts(10));
    const auto id = q.enqueue("x");
    // Delay after attempt N: min(5 s, 1 s * 2^(N-1)) -> 1, 2, 4, 5, 5 seconds.
    const std::int64_t expected[] = {1000, 2000, 4000, 5000, 5000};
    for (int n = 0; n < 5; ++n) {
        auto l = q.lease();
        cr_assert(l, "attempt %d", n + 1);
        cr_assert_eq(l->attempt, std::uint32_t(n + 1));
        cr_assert_eq(q.retry_delay(id, l->attempt).count(), expected[n]);
        cr_assert(q.nack(*l, "failed " + std::to_string(n + 1)));
        cr_assert(same_counts(q.counts(), 0, 1, 0, 0));
        cr_assert_eq(q.find(id)->last_error, "failed " + std::to_string(n + 1));
        advance(std::chrono::milliseconds(expected[n] - 1));
        cr_assert(!q.lease(), "visible 1 ms before the backoff ended (attempt %d)", n + 1);
        advance(1ms);
    }
    auto l = q.lease();
    cr_assert(l && l->attempt == 6);
    cr_assert_eq(q.retry_delay(id, 40).count(), 5000, "large attempts do not overflow");
}

Test(queue, jitter_is_deterministic_and_bounded) {
    Options o = opts();
    o.jitter = 0.5;
    Queue q(g_dir, "jobs", o);
    std::set<std::int64_t> seen;
    for (std::uint64_t id = 1; id <= 50; ++id) {
        const auto d = q.retry_delay(id, 2).count(); // 2 s without jitter
        cr_assert(d > 1000 && d <= 2000, "delay %lld out of [1 s, 2 s]", (long long)d);
        cr_assert_eq(d, q.retry_delay(id, 2).count(), "same input, same delay");
        seen.insert(d);
    }
    cr_assert_gt(seen.size(), 10u, "jitter spreads the retries");
}

Test(queue, dead_letter_after_max_attempts_then_requeue_and_purge) {
    lmdb::Env env(g_dir);
    Queue q(env, "jobs", opts(3));
    const auto id = q.enqueue("x");
    for (int round = 0; round < 2; ++round) { // the second round after requeue_dead
        for (int n = 1; n <= 3; ++n) {
            auto l = q.lease();
            cr_assert(l && l->id == id && l->attempt == std::uint32_t(n), "attempt %d", n);
            cr_assert(q.nack(*l, "boom " + std::to_string(n)));
            advance(10s);
        }
        cr_assert(!q.lease(), "dead items are not leased");
        auto dead = q.list_dead();
        cr_assert_eq(dead.size(), 1u);
        cr_assert_eq(dead[0].id, id);
        cr_assert(dead[0].state == State::dead);
        cr_assert_eq(dead[0].attempts, 3u);
        cr_assert_eq(dead[0].last_error, "boom 3");
        cr_assert_eq(dead[0].payload, "x");
        cr_assert(same_counts(q.counts(), 0, 0, 0, 1));
        if (round == 0) {
            cr_assert(q.requeue_dead(id));
            cr_assert(!q.requeue_dead(id), "no longer dead");
            cr_assert(!q.requeue_dead(12345), "unknown id");
            cr_assert(same_counts(q.counts(), 1, 0, 0, 0));
            cr_assert_eq(q.find(id)->attempts, 0u, "requeue resets the attempts");
        }
    }
    cr_assert(q.purge_dead(id));
    cr_assert(!q.find(id));
    cr_assert(!q.purge_dead(id));
    cr_assert(same_counts(q.counts(), 0, 0, 0, 0));

    // Bulk requeue and purge, on a queue that dead-letters at the first failure.
    Queue one(env, "one", opts(1));
    for (int i = 0; i < 3; ++i)
        one.enqueue("item");
    for (int i = 0; i < 3; ++i)
        cr_assert(one.nack(*one.lease(), "no"));
    cr_assert(same_counts(one.counts(), 0, 0, 0, 3));
    cr_assert(same_counts(q.counts(), 0, 0, 0, 0), "queues are separate");
    cr_assert_eq(one.requeue_dead(), 3u);
    cr_assert(same_counts(one.counts(), 3, 0, 0, 0));
    for (int i = 0; i < 3; ++i)
        cr_assert(one.nack(*one.lease(), "no"));
    cr_assert_eq(one.purge_dead(), 3u);
    cr_assert(same_counts(one.counts(), 0, 0, 0, 0));
    cr_assert(one.list_dead().empty());
}

Test(queue, cancel_removes_pending_delayed_and_dead_items_not_leased_ones) {
    Queue q(g_dir, "jobs", opts(1));
    const auto ready = q.enqueue("ready"), later = q.enqueue("later", {}, 60s);
    const auto running = q.enqueue("running"), failed = q.enqueue("failed");
    auto l1 = q.lease(); // ready
    cr_assert(l1 && l1->id == ready);
    cr_assert(q.ack(*l1));
    const auto again = q.enqueue("ready again");
    auto lr = q.lease();
    cr_assert(lr && lr->id == running);
    auto lf = q.lease();
    cr_assert(lf && lf->id == failed);
    cr_assert(q.nack(*lf, "broken")); // max_attempts 1: dead
    cr_assert(same_counts(q.counts(), 1, 1, 1, 1));
    cr_assert(q.cancel(later), "a delayed item");
    cr_assert(q.cancel(failed), "a dead item");
    cr_assert(!q.cancel(running), "a leased item is its holder's to end");
    cr_assert(!q.cancel(ready), "an acked item is gone already");
    cr_assert(!q.cancel(987654), "unknown id");
    cr_assert(!q.find(later) && !q.find(failed));
    cr_assert(same_counts(q.counts(), 1, 0, 1, 0));
    cr_assert(q.ack(*lr), "the leased item was left alone");
    advance(61s);
    auto l2 = q.lease();
    cr_assert(l2 && l2->id == again, "the cancelled delayed item never comes back");
    cr_assert(q.cancel(q.enqueue("x")));
    cr_assert(q.ack(*l2));
    cr_assert(!q.lease());
    cr_assert(same_counts(q.counts(), 0, 0, 0, 0));
}

Test(queue, bury_dead_letters_at_once_with_the_reason) {
    Queue q(g_dir, "jobs", opts(5));
    const auto id = q.enqueue("corrupt");
    auto l = q.lease();
    cr_assert(l && l->id == id && l->attempt == 1u);
    cr_assert(q.bury(*l, "not a video"));
    cr_assert(!q.bury(*l, "again"), "the lease is spent");
    cr_assert(!q.ack(*l));
    auto dead = q.list_dead();
    cr_assert(dead.size() == 1u && dead[0].id == id && dead[0].last_error == "not a video" &&
              dead[0].attempts == 1u);
    cr_assert(same_counts(q.counts(), 0, 0, 0, 1));
    cr_assert(!q.lease(), "no retry");
}

Test(queue, idempotent_enqueue) {
    Options o = opts();
    o.idempotency_retention = 1h;
    Queue q(g_dir, "jobs", o);
    const auto a = q.enqueue("first", "key-1");
    cr_assert_eq(q.enqueue("second", "key-1"), a, "same key, same id");
    const auto b = q.enqueue("other", "key-2");
    cr_assert_neq(a, b);
    cr_assert(same_counts(q.counts(), 2, 0, 0, 0), "no second item");
    auto l = q.lease();
    cr_assert(l && l->payload == "first");
    cr_assert(q.ack(*l));
    advance(59min);
    cr_assert_eq(q.enqueue("third", "key-1"), a, "remembered after the ack");
    cr_assert(same_counts(q.counts(), 1, 0, 0, 0));
    advance(1min);
    const auto c = q.enqueue("fourth", "key-1");
    cr_assert_gt(c, b, "retention over: a new item");
    cr_assert_eq(q.enqueue("fifth", "key-1"), c, "and the key maps to it now");
    cr_assert_eq(q.find(c)->payload, "fourth");
    cr_assert_throw(q.enqueue("x", std::string(256, 'k')), std::invalid_argument);
}

Test(queue, stale_lease_rejected) {
    Queue q(g_dir, "jobs", opts());
    q.enqueue("x");
    auto a = q.lease();
    cr_assert(a);
    advance(10s);
    auto b = q.lease(); // a expired; b now holds the item
    cr_assert(b && b->id == a->id);
    cr_assert(!q.ack(*a), "stale ack");
    cr_assert(!q.nack(*a, "late"), "stale nack");
    cr_assert(!q.extend(*a), "stale extend");
    Lease forged = *b;
    forged.lease_token += 1;
    cr_assert(!q.ack(forged), "wrong token");
    cr_assert(q.find(b->id)->state == State::leased);
    cr_assert(q.ack(*b));
}

Test(queue, expired_unreaped_lease_still_honoured) {
    Queue q(g_dir, "jobs", opts());
    const auto id = q.enqueue("x");
    auto l = q.lease();
    advance(11s);
    cr_assert(q.ack(*l), "nobody took the item over: the late ack is accepted");
    cr_assert(!q.find(id));
}

Test(queue, extend_keeps_the_lease) {
    Queue q(g_dir, "jobs", opts());
    q.enqueue("x");
    auto l = q.lease();
    advance(8s);
    cr_assert(q.extend(*l));
    cr_assert(l->expires_at == TimePoint(std::chrono::milliseconds(g_now_ms + 10000)));
    advance(8s); // 16 s after the lease, 8 s after the extension
    cr_assert(!q.lease(), "extended lease still holds the item");
    cr_assert(q.ack(*l));
}

Test(queue, counts) {
    Queue q(g_dir, "jobs", opts(1));
    for (int i = 0; i < 4; ++i)
        q.enqueue("r");
    for (int i = 0; i < 3; ++i)
        q.enqueue("d", {}, 1min);
    cr_assert(same_counts(q.counts(), 4, 3, 0, 0));
    auto l1 = q.lease();
    auto l2 = q.lease();
    cr_assert(same_counts(q.counts(), 2, 3, 2, 0));
    cr_assert(q.nack(*l1, "fatal")); // max_attempts 1: dead
    cr_assert(same_counts(q.counts(), 2, 3, 1, 1));
    cr_assert(q.ack(*l2));
    advance(1min);
    cr_assert(same_counts(q.counts(), 5, 0, 0, 1));
}

Test(queue, several_queues_in_one_env) {
    lmdb::Env env(g_dir);
    Queue a(env, "a", opts()), b(env, "b", opts());
    a.enqueue("for a", "k");
    cr_assert_eq(b.enqueue("for b", "k"), 1u, "ids and keys are per queue");
    cr_assert_eq(a.lease()->payload, "for a");
    cr_assert_eq(b.lease()->payload, "for b");
    cr_assert(!a.lease() && !b.lease());
}

// Outbox: the item commits or aborts with the caller's own records.
Test(queue, enqueue_in_caller_txn) {
    lmdb::Env env(g_dir);
    lmdb::Dbi records = env.open_dbi("records");
    Queue q(env, "jobs", opts());
    {
        lmdb::Txn t = env.begin_write();
        t.put(records, "r1", "x");
        q.enqueue(t, "lost", "key-a");
        t.abort();
    }
    cr_assert(same_counts(q.counts(), 0, 0, 0, 0), "aborted: no item");
    cr_assert(!env.read([&](lmdb::Txn& t) { return t.get(records, "r1").has_value(); }));
    const auto id = q.enqueue("kept", "key-a");
    cr_assert_eq(q.find(id)->payload, "kept", "the aborted enqueue did not take the key");
    cr_assert(same_counts(q.counts(), 1, 0, 0, 0));
    cr_assert(q.ack(*q.lease()));

    lmdb::Txn t = env.begin_write();
    t.put(records, "r2", "y");
    const auto id2 = q.enqueue(t, "job", {}, 0ms);
    cr_assert(!q.find(id2), "invisible before the commit");
    t.commit();
    auto l = q.lease();
    cr_assert(l && l->id == id2 && l->payload == "job");
    cr_assert(env.read([&](lmdb::Txn& r) { return r.get(records, "r2") == "y"; }));
    cr_assert(q.ack(*l));
}

Test(queue, enqueue_in_txn_honours_idempotency_keys) {
    lmdb::Env env(g_dir);
    Queue q(env, "jobs", opts());
    const auto a = q.enqueue("a", "k1");
    const auto b = env.write([&](lmdb::Txn& t) { return q.enqueue(t, "b", "k2"); });
    cr_assert_neq(a, b);
    cr_assert_eq(env.write([&](lmdb::Txn& t) { return q.enqueue(t, "a2", "k1"); }), a);
    cr_assert_eq(q.enqueue("b2", "k2"), b);
    cr_assert(same_counts(q.counts(), 2, 0, 0, 0));
    cr_assert_eq(q.find(a)->payload, "a");
    cr_assert_eq(q.find(b)->payload, "b");
}

Test(queue, enqueue_in_child_txn) {
    lmdb::Env env(g_dir);
    Queue q(env, "jobs", opts());
    lmdb::Txn parent = env.begin_write();
    {
        lmdb::Txn child = parent.begin_child();
        q.enqueue(child, "dropped", "key-a");
    } // aborted: takes neither an item nor the key with it
    lmdb::Txn child = parent.begin_child();
    const auto id = q.enqueue(child, "kept", "key-a");
    child.commit();
    cr_assert_eq(q.enqueue(parent, "again", "key-a"), id, "the parent sees the child's key");
    parent.commit();
    cr_assert(same_counts(q.counts(), 1, 0, 0, 0));
    auto l = q.lease();
    cr_assert(l && l->id == id && l->payload == "kept");
}

Test(queue, enqueue_through_group_commit) {
    lmdb::Env env(g_dir);
    lmdb::Dbi records = env.open_dbi("records");
    Queue q(env, "jobs", opts());
    lmdb::GroupCommit gc(env);
    try {
        gc.run([&](lmdb::Txn& t) {
            t.put(records, "r1", "x");
            q.enqueue(t, "lost", "key-a");
            throw std::runtime_error("handler failed");
        });
        cr_assert_fail("run must rethrow");
    } catch (const std::runtime_error&) {
    }
    const auto id = gc.run([&](lmdb::Txn& t) {
        t.put(records, "r2", "y");
        return q.enqueue(t, "kept", "key-a");
    });
    cr_assert_eq(q.enqueue("again", "key-a"), id, "the key went with the committed op");
    cr_assert(same_counts(q.counts(), 1, 0, 0, 0));
    auto l = q.lease();
    cr_assert(l && l->id == id && l->payload == "kept");
    env.read([&](lmdb::Txn& t) {
        cr_assert(!t.get(records, "r1"));
        cr_assert(t.get(records, "r2") == "y");
    });
}

Test(queue, enqueue_in_txn_rejects_other_transactions) {
    lmdb::Env env(g_dir);
    lmdb::Env other(g_dir / "other");
    Queue q(env, "jobs", opts());
    {
        lmdb::Txn t = other.begin_write();
        cr_assert_throw(q.enqueue(t, "x"), std::invalid_argument);
    }
    {
        lmdb::Txn t = env.begin_read();
        cr_assert_throw(q.enqueue(t, "x"), std::invalid_argument);
    }
    lmdb::Txn t = env.begin_write();
    t.abort();
    cr_assert_throw(q.enqueue(t, "x"), std::invalid_argument);
    cr_assert(same_counts(q.counts(), 0, 0, 0, 0));
}

Test(queue, rejects_bad_arguments) {
    cr_assert_throw(Queue(g_dir, "bad name", opts()), std::invalid_argument);
    cr_assert_throw(Queue(g_dir, "", opts()), std::invalid_argument);
    Options o = opts();
    o.visibility_timeout = 0s;
    cr_assert_throw(Queue(g_dir, "q", o), std::invalid_argument);
    o = opts();
    o.backoff_max = 1ms;
    cr_assert_throw(Queue(g_dir, "q", o), std::invalid_argument);
    lmdb::EnvOptions eo;
    eo.flags = MDB_NOSYNC;
    lmdb::Env nosync(g_dir / "nosync", eo);
    cr_assert_throw(Queue(nosync, "q", opts()), std::invalid_argument);
    Queue q(g_dir, "q", opts());
    cr_assert_throw(q.enqueue("x", {}, -1ms), std::invalid_argument);
}

Test(queue, concurrent_consumers_lease_each_item_once) {
    Queue q(g_dir, "jobs", opts());
    constexpr int items = 200;
    for (int i = 0; i < items; ++i)
        q.enqueue(std::to_string(i));
    std::mutex mu;
    std::map<std::uint64_t, int> acked;
    std::atomic<int> errors{0};
    auto worker = [&] {
        try {
            while (auto l = q.lease()) {
                if (!q.ack(*l)) ++errors;
                std::lock_guard lock(mu);
                ++acked[l->id];
            }
        } catch (...) {
            ++errors;
        }
    };
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
        ts.emplace_back(worker);
    for (auto& t : ts)
        t.join();
    cr_assert_eq(errors.load(), 0);
    cr_assert_eq(acked.size(), std::size_t(items));
    for (auto [id, n] : acked)
        cr_assert_eq(n, 1, "item %llu leased %d times", (unsigned long long)id, n);
}

// The child enqueues forever and reports each id on a pipe once enqueue() returned; we
// SIGKILL it mid-stream. Every reported id must be in the reopened queue.
Test(queue, enqueue_survives_kill_9) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    g_child = fork();
    cr_assert_neq(g_child, -1);
    if (g_child == 0) {
        close(fds[0]);
        try {
            Queue q(g_dir, "durable", Options{});
            for (std::uint64_t i = 1;; ++i) {
                const std::uint64_t id = q.enqueue("payload-" + std::to_string(i));
                if (write(fds[1], &id, sizeof id) != sizeof id) _exit(2);
            }
        } catch (...) {
            _exit(1);
        }
    }
    close(fds[1]);
    std::vector<std::uint64_t> reported;
    std::uint64_t id = 0;
    while (reported.size() < 100 && read(fds[0], &id, sizeof id) == sizeof id)
        reported.push_back(id);
    cr_assert_eq(reported.size(), 100u, "child stopped early");
    cr_assert_eq(kill(g_child, SIGKILL), 0);
    int status = 0;
    cr_assert_eq(waitpid(g_child, &status, 0), g_child);
    g_child = -1;
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child was not killed");
    while (read(fds[0], &id, sizeof id) == sizeof id)
        reported.push_back(id); // sent before
    close(fds[0]);

    Queue q(g_dir, "durable", opts());
    for (std::size_t i = 0; i < reported.size(); ++i) {
        cr_assert_eq(reported[i], i + 1, "ids are consecutive");
        auto item = q.find(reported[i]);
        cr_assert(item, "reported id %zu lost", i + 1);
        cr_assert_eq(item->payload, "payload-" + std::to_string(i + 1));
    }
    // No corruption: the queue holds exactly the committed items (the one in flight when
    // the child died may or may not have committed), all of them readable, and it works on.
    const Counts c = q.counts();
    cr_assert(c.ready == reported.size() || c.ready == reported.size() + 1,
              "%llu items for %zu reported", (unsigned long long)c.ready, reported.size());
    std::uint64_t leased = 0;
    while (auto l = q.lease()) {
        cr_assert_eq(l->payload, "payload-" + std::to_string(l->id));
        cr_assert(q.ack(*l));
        ++leased;
    }
    cr_assert_eq(leased, c.ready);
    cr_assert_eq(q.enqueue("after"), c.ready + 1);
}
