// Unit tests of strata::lmdb: each test runs in its own process (Criterion forks) on its
// own temporary directory, removed by the fixture even when an assertion fails.

#include "lmdb/cursor.hh"
#include "lmdb/env.hh"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <criterion/criterion.h>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace strata::lmdb;
namespace fs = std::filesystem;

static fs::path g_dir;

static void make_dir() {
    std::string tmpl = (fs::temp_directory_path() / "strata-lmdb-XXXXXX").string();
    cr_assert(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    g_dir = tmpl;
}

static void remove_dir() {
    std::error_code ec;
    if (!g_dir.empty()) fs::remove_all(g_dir, ec);
}

TestSuite(lmdb, .init = make_dir, .fini = remove_dir);

static std::string key(int i) {
    char buf[16];
    snprintf(buf, sizeof buf, "k%06d", i);
    return buf;
}

Test(lmdb, put_get_del) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    env.write([&](Txn& t) {
        t.put(db, "a", "1");
        t.put(db, "b", std::string("two\0bytes", 9));
        cr_assert(t.insert(db, "c", "3"));
        cr_assert(!t.insert(db, "c", "other"), "insert must not overwrite");
    });
    Txn r = env.begin_read();
    cr_assert(r.get(db, "a") == "1");
    cr_assert(r.get(db, "b") == std::string_view("two\0bytes", 9));
    cr_assert(r.get(db, "c") == "3");
    cr_assert(!r.get(db, "zz").has_value());
    cr_assert_eq(r.entries(db), 3u);
    r.abort();
    env.write([&](Txn& t) {
        cr_assert(t.del(db, "a"));
        cr_assert(!t.del(db, "a"), "second delete finds nothing");
        t.put(db, "b", "overwritten");
    });
    env.read([&](Txn& t) {
        cr_assert(!t.get(db, "a"));
        cr_assert(t.get(db, "b") == "overwritten");
        cr_assert_eq(t.entries(db), 2u);
    });
    env.write([&](Txn& t) { t.clear(db); });
    cr_assert_eq(env.read([&](Txn& t) { return t.entries(db); }), 0u);
}

Test(lmdb, cursor_iteration_order) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    std::vector<int> order;
    for (int i = 0; i < 200; ++i)
        order.push_back((i * 37) % 200); // a permutation
    env.write([&](Txn& t) {
        for (int i : order)
            t.put(db, key(i), std::to_string(i));
    });

    Txn t = env.begin_write();
    Cursor c(t, db);
    int n = 0;
    for (auto [k, v] : c.all()) {
        cr_assert(k == key(n), "key %d out of order", n);
        cr_assert(v == std::to_string(n));
        ++n;
    }
    cr_assert_eq(n, 200);

    n = 0;
    for (auto [k, v] : c.range(key(10), key(20))) {
        cr_assert(k == key(10 + n));
        ++n;
    }
    cr_assert_eq(n, 10, "range is [start, end)");

    n = 0;
    for (auto e : c.prefix("k00001")) { // k000010 .. k000019
        cr_assert(e.first.starts_with("k00001"));
        ++n;
    }
    cr_assert_eq(n, 10);

    n = 0;
    for (auto e : c.from(key(195))) {
        (void)e;
        ++n;
    }
    cr_assert_eq(n, 5);

    // Backwards from the end, and seek to a key between two entries.
    auto e = c.last();
    cr_assert(e && e->first == key(199));
    e = c.prev();
    cr_assert(e && e->first == key(198));
    e = c.seek("k000050x");
    cr_assert(e && e->first == key(51));
    e = c.find(key(7));
    cr_assert(e && e->second == "7");
    cr_assert(!c.find("nope"));

    // Delete every even key while iterating.
    for (auto [k, v] : c.all())
        if (std::stoi(std::string(v)) % 2 == 0) c.del();
    t.commit();
    cr_assert(!c.open(), "the transaction closed its cursor");

    Txn r = env.begin_read();
    cr_assert_eq(r.entries(db), 100u);
    Cursor rc(r, db);
    n = 0;
    for (auto [k, v] : rc.all()) {
        cr_assert(k == key(2 * n + 1));
        ++n;
    }
    cr_assert_eq(n, 100);
}

Test(lmdb, abort_discards) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    {
        Txn t = env.begin_write();
        t.put(db, "explicit", "x");
        t.abort();
        cr_assert(!t.active());
    }
    {
        Txn t = env.begin_write();
        t.put(db, "destructor", "x");
    } // not committed: aborted here
    try {
        env.write([&](Txn& t) {
            t.put(db, "thrown", "x");
            throw std::runtime_error("boom");
        });
        cr_assert_fail("write() must rethrow");
    } catch (const std::runtime_error& e) {
        cr_assert_str_eq(e.what(), "boom");
    }
    env.read([&](Txn& t) {
        cr_assert_eq(t.entries(db), 0u);
        cr_assert(!t.get(db, "explicit") && !t.get(db, "destructor") && !t.get(db, "thrown"));
    });
    // A committed write after all that still works (no writer lock left behind).
    env.write([&](Txn& t) { t.put(db, "ok", "1"); });
    cr_assert_eq(env.read([&](Txn& t) { return t.entries(db); }), 1u);
}

Test(lmdb, map_growth) {
    EnvOptions o;
    o.map_size = 64 << 10;
    Env env(g_dir, o);
    const std::size_t initial = env.map_size();
    cr_assert_leq(initial, std::size_t{64} << 10);
    Dbi db = env.open_dbi("t");
    const std::string value(4096, 'v');
    for (int batch = 0; batch < 96; ++batch) // 96 * 16 * 4 KiB = 6 MiB
        env.write([&](Txn& t) {
            for (int i = 0; i < 16; ++i)
                t.put(db, key(batch * 16 + i), value);
        });
    cr_assert_geq(env.map_size(), std::size_t{6} << 20, "map grew to %zu", env.map_size());
    env.read([&](Txn& t) {
        cr_assert_eq(t.entries(db), 96u * 16u);
        cr_assert(t.get(db, key(1535)) == value);
    });

    // Without write(), a full map is reported to the caller.
    EnvOptions capped = o;
    capped.max_map_size = 64 << 10;
    fs::path other = g_dir / "capped";
    Env small(other, capped);
    Dbi sdb = small.open_dbi("t");
    try {
        for (int i = 0; i < 1000; ++i)
            small.write([&](Txn& t) { t.put(sdb, key(i), value); });
        cr_assert_fail("expected MDB_MAP_FULL at max_map_size");
    } catch (const Error& e) {
        cr_assert_eq(e.code(), MDB_MAP_FULL);
    }
}

Test(lmdb, reopen_persistence) {
    {
        Env env(g_dir);
        Dbi db = env.open_dbi("t");
        env.write([&](Txn& t) {
            for (int i = 0; i < 100; ++i)
                t.put(db, key(i), std::to_string(i * i));
        });
    }
    Env env(g_dir);
    Dbi db = env.open_dbi("t", 0); // must exist now: no MDB_CREATE
    env.read([&](Txn& t) {
        cr_assert_eq(t.entries(db), 100u);
        cr_assert(t.get(db, key(12)) == "144");
    });
    try {
        env.open_dbi("missing", 0);
        cr_assert_fail("opening a missing database without MDB_CREATE must fail");
    } catch (const Error& e) {
        cr_assert_eq(e.code(), MDB_NOTFOUND);
    }
}

Test(lmdb, map_resized_by_other_process) {
    EnvOptions o;
    o.map_size = 64 << 10;
    Env env(g_dir, o);
    Dbi db = env.open_dbi("t");
    env.write([&](Txn& t) { t.put(db, "parent", "1"); });

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) { // child: its own Env (LMDB handles must not cross fork), grows the map
        int rc = 0;
        try {
            Env child(g_dir, o);
            Dbi cdb = child.open_dbi("t");
            const std::string value(4096, 'c');
            for (int b = 0; b < 64; ++b)
                child.write([&](Txn& t) {
                    for (int i = 0; i < 16; ++i)
                        t.put(cdb, key(b * 16 + i), value);
                });
        } catch (...) {
            rc = 1;
        }
        _exit(rc);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");

    // Our map is too small for the child's data: begin gets MDB_MAP_RESIZED and adopts.
    env.read([&](Txn& t) {
        cr_assert_eq(t.entries(db), 64u * 16u + 1u);
        cr_assert(t.get(db, key(1023)) == std::string(4096, 'c'));
    });
    cr_assert_geq(env.map_size(), std::size_t{4} << 20);
    env.write([&](Txn& t) { t.put(db, "parent-again", "2"); });
}

Test(lmdb, grow_refused_while_thread_holds_txn) {
    EnvOptions o;
    o.map_size = 64 << 10;
    Env env(g_dir, o);
    Dbi db = env.open_dbi("t");
    Txn reader = env.begin_read(); // this thread keeps a transaction open
    const std::string value(4096, 'v');
    try {
        for (int i = 0; i < 200; ++i)
            env.write([&](Txn& t) { t.put(db, key(i), value); });
        cr_assert_fail("growing with an open transaction in this thread must fail");
    } catch (const Error& e) {
        cr_assert_eq(e.code(), EDEADLK);
    }
    reader.abort();
    for (int i = 0; i < 200; ++i)
        env.write([&](Txn& t) { t.put(db, key(i), value); });
    cr_assert_eq(env.read([&](Txn& t) { return t.entries(db); }), 200u);
}

Test(lmdb, concurrent_growth_with_readers) {
    EnvOptions o;
    o.map_size = 64 << 10;
    Env env(g_dir, o);
    Dbi db = env.open_dbi("t");
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    auto writer = [&](int w) {
        try {
            const std::string value(2048, char('a' + w));
            for (int b = 0; b < 64; ++b)
                env.write([&](Txn& t) {
                    for (int i = 0; i < 16; ++i)
                        t.put(db, key(w * 100000 + b * 16 + i), value);
                });
        } catch (...) {
            ++failures;
        }
    };
    auto reader = [&] {
        try {
            while (!done) {
                env.read([&](Txn& t) {
                    Cursor c(t, db);
                    for (auto [k, v] : c.all())
                        if (v.size() != 2048) ++failures;
                });
            }
        } catch (...) {
            ++failures;
        }
    };
    std::thread r1(reader), r2(reader);
    std::thread w1(writer, 1), w2(writer, 2);
    w1.join();
    w2.join();
    done = true;
    r1.join();
    r2.join();
    cr_assert_eq(failures.load(), 0);
    cr_assert_eq(env.read([&](Txn& t) { return t.entries(db); }), 2u * 64u * 16u);
}

Test(lmdb, child_commit_visible_after_parent_commit) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    Txn parent = env.begin_write();
    parent.put(db, "p", "1");
    Cursor pc(parent, db);
    {
        Txn child = parent.begin_child();
        cr_assert(child.get(db, "p") == "1", "the child sees the parent's writes");
        child.put(db, "c", "2");
        cr_assert_throw(parent.put(db, "x", "x"), Error, "parent blocked while a child runs");
        cr_assert_throw(pc.first(), Error, "so are its cursors");
        child.commit();
    }
    cr_assert(parent.get(db, "c") == "2", "merged into the parent");
    cr_assert(pc.first().has_value(), "the parent's cursor works again");
    cr_assert(!env.read([&](Txn& r) { return r.get(db, "c").has_value(); }),
              "not visible before the parent commits");
    // The child must neither have left the parent's gate entry nor kept one of its own.
    cr_assert(env.held_by_this_thread(), "the parent still holds the gate");
    parent.commit();
    cr_assert(!env.held_by_this_thread(), "no gate entry left behind");
    const std::size_t before = env.map_size();
    env.grow(before);
    cr_assert_gt(env.map_size(), before, "gate free once the parent ended");
    env.read([&](Txn& r) {
        cr_assert(r.get(db, "p") == "1");
        cr_assert(r.get(db, "c") == "2");
    });
}

Test(lmdb, child_abort_discards_only_the_child) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    env.write([&](Txn& t) { t.put(db, "old", "0"); });
    Txn parent = env.begin_write();
    parent.put(db, "p", "1");
    {
        Txn child = parent.begin_child();
        child.put(db, "p", "overwritten");
        child.put(db, "c", "2");
        cr_assert(child.del(db, "old"));
        Txn grandchild = child.begin_child();
        grandchild.put(db, "g", "3");
        grandchild.commit();
        child.abort();
    }
    {
        Txn child = parent.begin_child();
        child.put(db, "c2", "4");
    } // destroyed without commit: aborted
    Txn child = parent.begin_child();
    child.put(db, "c3", "5");
    child.commit();
    parent.commit();
    env.read([&](Txn& r) {
        cr_assert(r.get(db, "p") == "1");
        cr_assert(r.get(db, "old") == "0");
        cr_assert(!r.get(db, "c") && !r.get(db, "g") && !r.get(db, "c2"));
        cr_assert(r.get(db, "c3") == "5");
        cr_assert_eq(r.entries(db), 3u);
    });
    cr_assert_throw(env.begin_read().begin_child(), Error, "read transactions do not nest");
}

Test(lmdb, parent_abort_discards_committed_children) {
    Env env(g_dir);
    Dbi db = env.open_dbi("t");
    {
        Txn parent = env.begin_write();
        Txn child = parent.begin_child();
        child.put(db, "c", "1");
        child.commit();
        parent.abort();
    }
    std::optional<Txn> orphan;
    {
        Txn parent = env.begin_write();
        orphan = parent.begin_child();
        orphan->put(db, "o", "1");
        Cursor c(*orphan, db);
    } // the parent ends first: it aborts its child
    cr_assert(!orphan->active());
    cr_assert(!env.held_by_this_thread());
    orphan.reset();
    env.read([&](Txn& r) { cr_assert_eq(r.entries(db), 0u); });
    const std::size_t before = env.map_size();
    env.grow(before); // would throw EDEADLK if a gate entry were left behind
    cr_assert_gt(env.map_size(), before);
    env.write([&](Txn& t) { t.put(db, "after", "1"); }); // writer lock released
    cr_assert_eq(env.read([&](Txn& r) { return r.entries(db); }), 1u);
}
