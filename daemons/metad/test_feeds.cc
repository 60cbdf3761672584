// Unit tests of Feeds on a temporary LMDB environment: follows, fan-out through the queue
// (batches, idempotent reruns, aborted publishes), trimming, paging and the worker thread.
#include "feeds.hh"
#include "lmdb/env.hh"

#include <chrono>
#include <criterion/criterion.h>
#include <filesystem>
#include <memory>
#include <thread>
#include <unistd.h>

using namespace strata;
using namespace strata::metad;
namespace fs = std::filesystem;

static fs::path g_dir;
static void make_dir() {
    char tmpl[] = "/tmp/strata-feeds-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    g_dir = tmpl;
}
static void remove_dir() {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
}
TestSuite(feeds, .init = make_dir, .fini = remove_dir);

static std::unique_ptr<lmdb::Env> open_env() {
    lmdb::EnvOptions o;
    o.max_dbs = 128;
    return std::make_unique<lmdb::Env>(g_dir / "db", o);
}

static FeedItem item(std::uint64_t id, std::uint64_t author) {
    return {id,
            author,
            1000 + id,
            "public",
            "f" + std::to_string(id) + ".jpg",
            "image/jpeg",
            static_cast<std::int64_t>(id)};
}

static void publish(lmdb::Env& env, Feeds& f, const FeedItem& it) {
    env.write([&](lmdb::Txn& t) { f.publish(t, it); });
}

// Runs every ready job; bounded so a job that never finishes fails the test.
static int drain(Feeds& f) {
    int n = 0;
    while (n < 100 && f.run_once())
        ++n;
    cr_assert_lt(n, 100, "fan-out queue did not drain");
    return n;
}

static std::vector<std::uint64_t> ids_of(const FeedPage& p) {
    std::vector<std::uint64_t> ids;
    for (auto& i : p.items)
        ids.push_back(i.id);
    return ids;
}

Test(feeds, follow_unfollow_and_listing) {
    auto env = open_env();
    Feeds f(*env);
    env->write([&](lmdb::Txn& t) {
        cr_expect(f.follow(t, 1, 2, 100));
        cr_expect(!f.follow(t, 1, 2, 200), "already following");
        cr_expect(f.follow(t, 1, 3, 300));
        cr_expect(f.follow(t, 1, 4, 400));
        cr_expect(f.follow(t, 5, 2, 500));
    });
    env->read([&](lmdb::Txn& t) {
        auto all = f.following(t, 1, 0, 10);
        cr_assert_eq(all.size(), 3u);
        cr_expect(all[0].user == 2 && all[0].since == 100, "first follow keeps its time");
        cr_expect(all[1].user == 3 && all[2].user == 4);
        auto page = f.following(t, 1, 2, 1);
        cr_assert_eq(page.size(), 1u);
        cr_expect_eq(page[0].user, 3u, "after_id is exclusive");
        auto fol = f.followers(t, 2, 0, 10);
        cr_assert_eq(fol.size(), 2u);
        cr_expect(fol[0].user == 1 && fol[1].user == 5);
        cr_expect(f.followers(t, 1, 0, 10).empty());
        cr_expect(f.counts(t, 1).following == 3 && f.counts(t, 1).followers == 0);
        cr_expect(f.counts(t, 2).following == 0 && f.counts(t, 2).followers == 2);
    });
    env->write([&](lmdb::Txn& t) {
        cr_expect(f.unfollow(t, 1, 2));
        cr_expect(!f.unfollow(t, 1, 2), "not following any more");
        cr_expect(!f.unfollow(t, 2, 1));
    });
    env->read([&](lmdb::Txn& t) {
        cr_expect_eq(f.following(t, 1, 0, 10).size(), 2u);
        cr_expect_eq(f.followers(t, 2, 0, 10).size(), 1u);
        cr_expect(f.counts(t, 1).following == 2 && f.counts(t, 2).followers == 1);
    });
}

Test(feeds, aborted_publish_fans_out_nothing) {
    auto env = open_env();
    Feeds f(*env);
    env->write([&](lmdb::Txn& t) { f.follow(t, 10, 1, 0); });
    {
        lmdb::Txn t = env->begin_write();
        f.publish(t, item(7, 1));
        t.abort();
    }
    cr_expect(!f.run_once(), "no job after the abort");
    env->read([&](lmdb::Txn& t) { cr_expect(f.feed(t, 10, 0, 10).items.empty()); });
    // The aborted publish did not consume the idempotency key.
    publish(*env, f, item(7, 1));
    cr_expect_eq(drain(f), 1);
    env->read([&](lmdb::Txn& t) { cr_expect_eq(f.feed_size(t, 10), 1u); });
}

Test(feeds, fan_out_reaches_every_follower_in_batches) {
    auto env = open_env();
    Feeds f(*env, {.max_entries = 1000, .batch = 500});
    constexpr std::uint64_t author = 1, n = 1200;
    env->write([&](lmdb::Txn& t) {
        for (std::uint64_t u = 100; u < 100 + n; ++u)
            f.follow(t, u, author, 0);
        f.follow(t, 50, 2, 0); // follows somebody else
    });
    publish(*env, f, item(42, author));
    env->read([&](lmdb::Txn& t) { cr_expect_eq(f.feed_size(t, 100), 0u, "only on run_once"); });
    cr_expect_eq(drain(f), 1);
    env->read([&](lmdb::Txn& t) {
        std::size_t have = 0;
        for (std::uint64_t u = 100; u < 100 + n; ++u) {
            auto p = f.feed(t, u, 0, 10);
            have += p.items.size() == 1 && p.items[0].id == 42 && f.feed_size(t, u) == 1;
        }
        cr_expect_eq(have, n, "every follower, across batches");
        auto p = f.feed(t, 150, 0, 10);
        cr_assert_eq(p.items.size(), 1u);
        const FeedItem& got = p.items[0];
        cr_expect(got.author == author && got.node == 1042 && got.kind == "public" &&
                  got.name == "f42.jpg" && got.media_type == "image/jpeg" && got.created == 42);
        cr_expect(f.feed(t, 50, 0, 10).items.empty(), "not a follower");
        cr_expect(f.feed(t, author, 0, 10).items.empty(), "not into the author's own feed");
    });
    cr_expect_eq(f.queue().counts().ready + f.queue().counts().leased, 0u, "job acked");
}

Test(feeds, rerun_writes_nothing_twice) {
    auto env = open_env();
    Feeds f(*env, {.max_entries = 1000, .batch = 2});
    env->write([&](lmdb::Txn& t) {
        for (std::uint64_t u = 10; u < 15; ++u)
            f.follow(t, u, 1, 0);
    });
    publish(*env, f, item(9, 1));
    publish(*env, f, item(9, 1)); // same id: the queue keeps one job
    cr_expect_eq(drain(f), 1);
    // A rerun of the job (as after a crash before its ack): the same payload once more.
    f.queue().enqueue(encode_item(item(9, 1)));
    cr_expect_eq(drain(f), 1);
    env->read([&](lmdb::Txn& t) {
        for (std::uint64_t u = 10; u < 15; ++u) {
            cr_expect_eq(f.feed(t, u, 0, 10).items.size(), 1u);
            cr_expect_eq(f.feed_size(t, u), 1u, "count not bumped by the rerun");
        }
    });
}

Test(feeds, cap_trims_the_oldest) {
    auto env = open_env();
    Feeds f(*env, {.max_entries = 3, .batch = 500});
    env->write([&](lmdb::Txn& t) { f.follow(t, 10, 1, 0); });
    for (std::uint64_t id = 1; id <= 5; ++id)
        publish(*env, f, item(id, 1));
    cr_expect_eq(drain(f), 5);
    env->read([&](lmdb::Txn& t) {
        cr_expect(ids_of(f.feed(t, 10, 0, 10)) == (std::vector<std::uint64_t>{5, 4, 3}));
        cr_expect_eq(f.feed_size(t, 10), 3u);
    });
    env->write([&](lmdb::Txn& t) {
        cr_expect(f.remove_entry(t, 10, 4));
        cr_expect(!f.remove_entry(t, 10, 4));
        cr_expect_eq(f.feed_size(t, 10), 2u);
    });
    publish(*env, f, item(6, 1));
    publish(*env, f, item(7, 1));
    cr_expect_eq(drain(f), 2);
    env->read([&](lmdb::Txn& t) {
        cr_expect(ids_of(f.feed(t, 10, 0, 10)) == (std::vector<std::uint64_t>{7, 6, 5}));
        cr_expect_eq(f.feed_size(t, 10), 3u);
    });
}

Test(feeds, paging_with_the_cursor) {
    auto env = open_env();
    Feeds f(*env);
    env->write([&](lmdb::Txn& t) {
        f.follow(t, 10, 1, 0);
        f.follow(t, 11, 1, 0); // a neighbour feed, so pages must stop at the user's edge
        f.follow(t, 9, 1, 0);
    });
    for (std::uint64_t id = 1; id <= 5; ++id)
        publish(*env, f, item(id, 1));
    drain(f);
    env->read([&](lmdb::Txn& t) {
        auto p1 = f.feed(t, 10, 0, 2);
        cr_expect(ids_of(p1) == (std::vector<std::uint64_t>{5, 4}));
        cr_expect_eq(p1.next, 4u);
        auto p2 = f.feed(t, 10, p1.next, 2);
        cr_expect(ids_of(p2) == (std::vector<std::uint64_t>{3, 2}));
        cr_expect_eq(p2.next, 2u);
        auto p3 = f.feed(t, 10, p2.next, 2);
        cr_expect(ids_of(p3) == (std::vector<std::uint64_t>{1}));
        cr_expect_eq(p3.next, 0u, "end");
        auto exact = f.feed(t, 10, 0, 5);
        cr_expect_eq(exact.items.size(), 5u);
        cr_expect_eq(exact.next, 0u, "a full last page still ends");
        cr_expect(f.feed(t, 12, 0, 5).items.empty());
    });
}

Test(feeds, worker_delivers_after_wake) {
    auto env = open_env();
    Feeds f(*env);
    env->write([&](lmdb::Txn& t) { f.follow(t, 10, 1, 0); });
    FeedWorker w(f);
    std::this_thread::sleep_for(std::chrono::milliseconds(100)); // let it go idle
    publish(*env, f, item(3, 1));
    const auto start = std::chrono::steady_clock::now();
    w.wake();
    bool seen = false;
    // Well before the worker's 1 s timeout: it is the wake() that made it look.
    for (int i = 0; i < 170 && !seen; ++i) {
        seen = env->read([&](lmdb::Txn& t) { return f.feed_size(t, 10) == 1; });
        if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    cr_expect(seen, "delivered after wake()");
    cr_expect_lt(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(850));
}
