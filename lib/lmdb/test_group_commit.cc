// Unit tests of strata::lmdb::GroupCommit: each test runs in its own process (Criterion
// forks) on its own temporary directory, removed by the fixture even when an assertion
// fails. Batches are made deterministic by a "blocker" op that holds the writer thread until
// the ops under test are queued behind it.

#include "lmdb/group_commit.hh"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <criterion/criterion.h>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace strata::lmdb;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

static fs::path g_dir;

// Every batch is fsync'ed: tmpfs keeps that cheap.
static void make_dir() {
    std::error_code ec;
    const fs::path root =
        !getenv("TMPDIR") && fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0
            ? fs::path("/dev/shm")
            : fs::temp_directory_path();
    std::string tmpl = (root / "strata-gc-XXXXXX").string();
    cr_assert(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    g_dir = tmpl;
}

static void remove_dir() {
    std::error_code ec;
    if (!g_dir.empty()) fs::remove_all(g_dir, ec);
}

TestSuite(group_commit, .init = make_dir, .fini = remove_dir);

static std::string key(int t, int i) {
    return "k" + std::to_string(t) + "/" + std::to_string(i);
}

template <class P>
static bool eventually(P pred) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// Occupies the writer thread with one op until release(); the ops submitted meanwhile
// queue up behind it.
class Blocker {
public:
    Blocker(GroupCommit& gc, Dbi db)
        : thread_([this, &gc, db] {
              gc.run([&](Txn& t) {
                  started_ = true;
                  while (!released_)
                      std::this_thread::sleep_for(1ms);
                  t.put(db, "blocker", "1");
              });
          }) {
        cr_assert(eventually([this] { return started_.load(); }), "blocker never ran");
    }
    ~Blocker() {
        release();
        thread_.join();
    }
    void release() { released_ = true; }

private:
    std::atomic<bool> started_{false}, released_{false};
    std::thread thread_;
};

struct Custom {
    int code;
};

static std::size_t entries(Env& env, Dbi db) {
    return env.read([&](Txn& t) { return t.entries(db); });
}

Test(group_commit, results_and_exceptions_reach_the_caller) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    GroupCommit gc(env);
    cr_assert_eq(gc.run([&](Txn& t) { return t.insert(db, "a", "1") ? 7 : 0; }), 7);
    const std::string s = gc.run([&](Txn& t) { return std::string(*t.get(db, "a")) + "!"; });
    cr_assert_eq(s, "1!");
    gc.run([&](Txn& t) { t.put(db, "b", "2"); });
    cr_assert_eq(entries(env, db), 2u, "void ops commit too");
    try {
        gc.run([&](Txn& t) -> int {
            t.put(db, "c", "3");
            throw Custom{42};
        });
        cr_assert_fail("the exception must reach the caller");
    } catch (const Custom& e) {
        cr_assert_eq(e.code, 42);
    }
    cr_assert_eq(entries(env, db), 2u, "the throwing op's write is gone");
    // Misuse fails loudly instead of deadlocking.
    cr_assert_throw(gc.run([&](Txn&) { gc.run([](Txn&) {}); }), std::logic_error);
    Txn reader = env.begin_read();
    try {
        gc.run([](Txn&) {});
        cr_assert_fail("a caller holding a transaction must be refused");
    } catch (const Error& e) {
        cr_assert_eq(e.code(), EDEADLK);
    }
    reader.abort();
    cr_assert_throw(GroupCommit(env, 0), std::invalid_argument);
}

Test(group_commit, concurrent_ops_all_committed_in_fewer_batches) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    GroupCommit gc(env);
    constexpr int threads = 8, ops = 200;
    std::atomic<int> errors{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            try {
                for (int i = 0; i < ops; ++i) {
                    const int got = gc.run([&](Txn& txn) {
                        txn.put(db, key(t, i), std::to_string(i));
                        return i;
                    });
                    if (got != i) ++errors;
                }
            } catch (...) {
                ++errors;
            }
        });
    for (auto& t : ts)
        t.join();
    cr_assert_eq(errors.load(), 0);
    env.read([&](Txn& txn) {
        cr_assert_eq(txn.entries(db), std::size_t(threads * ops));
        for (int t = 0; t < threads; ++t)
            for (int i = 0; i < ops; ++i)
                cr_assert(txn.get(db, key(t, i)) == std::to_string(i), "%s", key(t, i).c_str());
    });
    const std::uint64_t b = gc.batches();
    cr_assert_lt(b, std::uint64_t(threads * ops), "no batching: %llu batches",
                 (unsigned long long)b);
    cr_assert_gt(b, 0u);
}

// Ops queued while the writer is busy go in one batch, at most max_batch of them.
static std::uint64_t batches_for(std::size_t max_batch, int queued) {
    Env env(g_dir / std::to_string(max_batch));
    Dbi db = env.open_dbi("t");
    GroupCommit gc(env, max_batch);
    std::vector<std::thread> ts;
    {
        Blocker blocker(gc, db);
        for (int i = 0; i < queued; ++i)
            ts.emplace_back([&, i] { gc.run([&](Txn& t) { t.put(db, key(0, i), "v"); }); });
        cr_assert(eventually([&] { return gc.queued() == std::size_t(queued); }));
    }
    for (auto& t : ts)
        t.join();
    cr_assert_eq(entries(env, db), std::size_t(queued) + 1);
    return gc.batches();
}

Test(group_commit, queued_ops_share_a_batch) {
    cr_assert_eq(batches_for(256, 7), 2u, "the blocker, then the 7 others together");
    cr_assert_eq(batches_for(3, 7), 4u, "the blocker, then 3 + 3 + 1");
}

Test(group_commit, throwing_op_rolls_back_only_itself) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    GroupCommit gc(env);
    std::atomic<int> ok{0}, custom{0}, other{0};
    std::vector<std::thread> ts;
    {
        Blocker blocker(gc, db);
        for (int i = 0; i < 4; ++i)
            ts.emplace_back([&, i] {
                try {
                    gc.run([&](Txn& t) {
                        t.put(db, key(0, i), "v");
                        if (i == 2) throw Custom{i};
                    });
                    ++ok;
                } catch (const Custom& e) {
                    if (e.code == 2) ++custom;
                } catch (...) {
                    ++other;
                }
            });
        cr_assert(eventually([&] { return gc.queued() == 4; }));
    }
    for (auto& t : ts)
        t.join();
    cr_assert_eq(gc.batches(), 2u, "the four ops were one batch");
    cr_assert_eq(ok.load(), 3);
    cr_assert_eq(custom.load(), 1, "the op's own exception type arrives");
    cr_assert_eq(other.load(), 0);
    env.read([&](Txn& t) {
        cr_assert(t.get(db, key(0, 0)) && t.get(db, key(0, 1)) && t.get(db, key(0, 3)));
        cr_assert(!t.get(db, key(0, 2)), "the throwing op's write is absent");
    });
}

Test(group_commit, map_grows_and_batches_rerun) {
    EnvOptions o;
    o.map_size = 64 << 10;
    Env env(g_dir, o);
    const std::size_t initial = env.map_size();
    Dbi db = env.open_dbi("t");
    GroupCommit gc(env);
    constexpr int threads = 8, ops = 50;
    const std::string value(4096, 'v');
    std::atomic<int> errors{0}, runs{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            try {
                for (int i = 0; i < ops; ++i)
                    if (gc.run([&](Txn& txn) {
                            ++runs;
                            txn.put(db, key(t, i), value + std::to_string(i));
                            return i;
                        }) != i)
                        ++errors;
            } catch (...) {
                ++errors;
            }
        });
    for (auto& t : ts)
        t.join();
    cr_assert_eq(errors.load(), 0);
    // 400 x 4 KiB from a 64 KiB map: at least five doublings.
    cr_assert_geq(env.map_size(), initial << 5, "map only grew to %zu", env.map_size());
    cr_assert_gt(runs.load(), threads * ops, "full batches were rerun");
    env.read([&](Txn& txn) {
        cr_assert_eq(txn.entries(db), std::size_t(threads * ops));
        for (int t = 0; t < threads; ++t)
            for (int i = 0; i < ops; ++i)
                cr_assert(txn.get(db, key(t, i)) == value + std::to_string(i));
    });
}

// The caller gets the outcome of the attempt that committed, not of an earlier one.
Test(group_commit, rerun_reports_the_final_attempt) {
    EnvOptions o;
    o.map_size = 64 << 10;
    Env env(g_dir, o);
    Dbi db = env.open_dbi("t");
    GroupCommit gc(env);
    std::atomic<int> runs{0}, ok{0};
    std::vector<std::thread> ts;
    {
        Blocker blocker(gc, db);
        ts.emplace_back([&] { // throws on its first run only
            try {
                gc.run([&](Txn& t) {
                    t.put(db, "flaky", "1");
                    if (runs++ == 0) throw Custom{1};
                });
                ++ok;
            } catch (...) {
            }
        });
        cr_assert(eventually([&] { return gc.queued() == 1; }));
        ts.emplace_back([&] { // then fills the map: the batch reruns
            gc.run([&](Txn& t) { t.put(db, "big", std::string(256 << 10, 'v')); });
            ++ok;
        });
        cr_assert(eventually([&] { return gc.queued() == 2; }));
    }
    for (auto& t : ts)
        t.join();
    cr_assert_gt(runs.load(), 1, "the batch was rerun");
    cr_assert_eq(ok.load(), 2, "the flaky op succeeded on the rerun that committed");
    env.read([&](Txn& t) { cr_assert(t.get(db, "flaky") && t.get(db, "big")); });
}

Test(group_commit, failed_batch_fails_every_op) {
    EnvOptions o;
    o.map_size = o.max_map_size = 64 << 10;
    Env env(g_dir, o);
    Dbi db = env.open_dbi("t");
    GroupCommit gc(env);
    std::atomic<int> map_full{0}, other{0};
    std::vector<std::thread> ts;
    {
        Blocker blocker(gc, db);
        for (int i = 0; i < 2; ++i)
            ts.emplace_back([&, i] {
                try {
                    // One op is too big for the capped map: the whole batch fails.
                    gc.run(
                        [&](Txn& t) { t.put(db, key(0, i), std::string(i ? 1 << 20 : 1, 'v')); });
                    ++other;
                } catch (const Error& e) {
                    if (e.code() == MDB_MAP_FULL) ++map_full;
                } catch (...) {
                    ++other;
                }
            });
        cr_assert(eventually([&] { return gc.queued() == 2; }));
    }
    for (auto& t : ts)
        t.join();
    cr_assert_eq(map_full.load(), 2, "both ops of the failed batch get MDB_MAP_FULL");
    cr_assert_eq(other.load(), 0);
    env.read([&](Txn& t) { cr_assert(!t.get(db, key(0, 0)) && !t.get(db, key(0, 1))); });
    gc.run([&](Txn& t) { t.put(db, "after", "1"); }); // the writer is still alive
    cr_assert_eq(entries(env, db), 2u, "blocker and after");
}

Test(group_commit, destructor_completes_queued_ops) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    auto gc = std::make_unique<GroupCommit>(env);
    std::atomic<int> ok{0};
    std::vector<std::thread> ts;
    {
        Blocker blocker(*gc, db);
        for (int i = 0; i < 3; ++i)
            ts.emplace_back([&, i] {
                gc->run([&](Txn& t) { t.put(db, key(0, i), "v"); });
                ++ok;
            });
        cr_assert(eventually([&] { return gc->queued() == 3; }));
        blocker.release();
        gc.reset(); // while the queued ops wait
    }
    for (auto& t : ts)
        t.join();
    cr_assert_eq(ok.load(), 3);
    cr_assert_eq(entries(env, db), 4u);
}

// The nice value of this process's thread named `comm` (field 19 of its stat), or -100.
static int nice_of_thread(const std::string& comm) {
    for (const auto& task : fs::directory_iterator("/proc/self/task")) {
        std::string name;
        if (FILE* f = fopen((task.path() / "comm").c_str(), "r")) {
            char buf[64] = {};
            if (fgets(buf, sizeof buf, f)) name = buf;
            fclose(f);
        }
        if (name != comm + "\n") continue;
        std::string stat;
        if (FILE* f = fopen((task.path() / "stat").c_str(), "r")) {
            char buf[1024] = {};
            if (fgets(buf, sizeof buf, f)) stat = buf;
            fclose(f);
        }
        // The fields after the ")" that closes comm: state is field 3, nice field 19.
        std::size_t p = stat.rfind(')');
        if (p == std::string::npos) return -100;
        int field = 2;
        const char* s = stat.c_str() + p + 1;
        while (*s && field < 19) {
            if (*s == ' ') ++field;
            ++s;
        }
        return std::atoi(s);
    }
    return -100;
}

Test(group_commit, writer_thread_is_named_and_takes_its_nice_value) {
    Env env(g_dir / "db");
    const int before = nice_of_thread("test-group_comm"); // this (main) thread
    {
        GroupCommit gc(env, 256, 0);
        cr_assert_eq(gc.nice_error(), 0);
        cr_assert_eq(nice_of_thread("lmdb-commit"), before, "no nice asked: the process's");
    }
    // Raising one's nice value needs no privilege: the writer alone gets it.
    GroupCommit gc(env, 256, 5);
    cr_assert_eq(gc.nice_error(), 0);
    cr_assert_eq(nice_of_thread("lmdb-commit"), before + 5 > 19 ? 19 : before + 5);
    cr_assert_eq(nice_of_thread("test-group_comm"), before, "the caller's thread is untouched");
    Dbi dbi = env.open_dbi("");
    gc.run([&](Txn& t) { t.put(dbi, "k", "v"); });
    cr_assert(env.read([&](Txn& t) { return t.get(dbi, "k").has_value(); }));
}

// submit(): the op joins a batch like run()'s, and done learns its fate on the writer thread
// once the batch is over: committed (nullptr, the write visible), or its own exception (only
// its write rolled back). Queued async ops are completed by the destructor too.
Test(group_commit, submitted_ops_complete_after_their_batch) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    auto gc = std::make_unique<GroupCommit>(env);
    struct Outcome {
        std::atomic<int> state{0}; // 0: pending, 1: committed, 2: failed
        std::atomic<bool> visible{false}, on_writer{false};
    };
    std::vector<Outcome> out(4);
    std::thread::id caller = std::this_thread::get_id();
    std::vector<int> order;
    std::mutex order_mu;
    {
        Blocker blocker(*gc, db); // the four ops below queue up and share one batch
        for (int i = 0; i < 4; ++i)
            gc->submit(
                [&, i](Txn& t) {
                    t.put(db, key(1, i), "v");
                    if (i == 2) throw Custom{i};
                },
                [&, i](std::exception_ptr e) {
                    {
                        std::lock_guard lk(order_mu);
                        order.push_back(i);
                    }
                    out[i].on_writer = std::this_thread::get_id() != caller;
                    out[i].visible =
                        env.read([&](Txn& t) { return t.get(db, key(1, i)).has_value(); });
                    try {
                        if (e) std::rethrow_exception(e);
                        out[i].state = 1;
                    } catch (const Custom& c) {
                        out[i].state = c.code == i ? 2 : 3;
                    } catch (...) {
                        out[i].state = 3;
                    }
                });
        cr_assert_eq(gc->queued(), 4u, "submit does not wait");
        for (auto& o : out)
            cr_assert_eq(o.state.load(), 0, "nothing completes before the batch");
        blocker.release();
    }
    cr_assert(eventually([&] {
        for (auto& o : out)
            if (o.state == 0) return false;
        return true;
    }));
    for (int i = 0; i < 4; ++i) {
        cr_expect_eq(out[i].state.load(), i == 2 ? 2 : 1, "op %d", i);
        cr_expect_eq(out[i].visible.load(), i != 2, "op %d: durable before done", i);
        cr_expect(out[i].on_writer.load(), "done runs on the writer thread");
    }
    cr_expect(order == (std::vector<int>{0, 1, 2, 3}), "in queue order");
    // Queued when the destructor starts: still committed and completed.
    std::atomic<int> late{0};
    {
        Blocker blocker(*gc, db);
        for (int i = 0; i < 3; ++i)
            gc->submit([&, i](Txn& t) { t.put(db, key(2, i), "v"); },
                       [&](std::exception_ptr e) { late += e ? 100 : 1; });
        blocker.release();
        gc.reset();
    }
    cr_assert_eq(late.load(), 3);
    cr_assert_eq(env.read([&](Txn& t) { return t.get(db, key(2, 2)).has_value(); }), true);
}
