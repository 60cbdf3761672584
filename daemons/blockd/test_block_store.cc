// Unit tests of strata::blockd::BlockStore: each test runs in its own process (Criterion
// forks) on its own temporary directory, removed (and unmounted) by the fixture.

#include "block_store.hh"
#include "sha256.hh"

#include <algorithm>
#include <cerrno>
#include <criterion/criterion.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace strata::blockd;
namespace fs = std::filesystem;

static fs::path g_dir;
static fs::path g_mount; // non-empty while a tmpfs is mounted there

static void make_dir() {
    std::string tmpl = (fs::temp_directory_path() / "strata-blockstore-XXXXXX").string();
    cr_assert(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    g_dir = tmpl;
}

static void remove_dir() {
    if (!g_mount.empty()) umount2(g_mount.c_str(), MNT_DETACH);
    std::error_code ec;
    if (!g_dir.empty()) fs::remove_all(g_dir, ec);
}

TestSuite(block_store, .init = make_dir, .fini = remove_dir);

static std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

static std::size_t count_files(const fs::path& dir) {
    std::size_t n = 0;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file()) ++n;
    return n;
}

static std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    unsigned x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 16);
    }
    return s;
}

template <typename F>
static ErrorKind kind_of(F&& f) {
    try {
        f();
    } catch (const BlockError& e) {
        return e.kind();
    }
    cr_assert_fail("expected a BlockError");
    return ErrorKind::io;
}

Test(block_store, sha256_known_vectors) {
    cr_assert_eq(std::string(sha256_hex("")),
                 std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    cr_assert_eq(std::string(sha256_hex("abc")),
                 std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

Test(block_store, put_roundtrip_and_path) {
    BlockStore st(g_dir);
    std::string data = "hello, blocks";
    std::string h = sha256_hex(data);
    PutResult r = st.put(h, data);
    cr_assert(r.stored);
    cr_assert(!r.existed);
    cr_assert_eq(r.size, data.size());
    cr_assert_eq(std::string(r.hash), std::string(h));

    fs::path expect = g_dir / "blocks" / h.substr(0, 2) / h.substr(2, 2) / h;
    cr_assert(fs::is_regular_file(expect), "block not at %s", expect.c_str());
    cr_assert_eq(st.block_path(h), expect);
    cr_assert_eq(read_file(expect), data);
    cr_assert_eq(fs::status(expect).permissions() & fs::perms::all,
                 fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);

    cr_assert(st.has(h));
    auto info = st.stat(h);
    cr_assert(info.has_value());
    cr_assert_eq(info->size, data.size());
    cr_assert_eq(info->path, expect);
    auto age = std::chrono::system_clock::now() - info->mtime;
    cr_assert(age < std::chrono::minutes(1) && age > -std::chrono::minutes(1));

    int fd = st.open_read(h);
    cr_assert_geq(fd, 0);
    char buf[64] = {};
    cr_assert_eq(read(fd, buf, sizeof buf), (ssize_t)data.size());
    close(fd);
    cr_assert_eq(std::string(buf, data.size()), data);
    cr_assert(st.verify(h));

    Stats s = st.stats();
    cr_assert_eq(s.blocks, 1u);
    cr_assert_eq(s.bytes, data.size());
    cr_assert_eq(count_files(g_dir / "tmp"), 0u);
}

Test(block_store, empty_and_max_size_blocks) {
    BlockStore st(g_dir);
    PutResult e = st.put(sha256_hex(""), "");
    cr_assert(e.stored);
    cr_assert_eq(st.stat(e.hash)->size, 0u);
    std::string big = pattern(max_block_size, 7);
    PutResult b = st.put(sha256_hex(big), big);
    cr_assert(b.stored);
    cr_assert(st.verify(b.hash));
}

Test(block_store, idempotent_put) {
    BlockStore st(g_dir);
    std::string data = pattern(1000, 1);
    std::string h = sha256_hex(data);
    cr_assert(st.put(h, data).stored);
    // Age the block, then store it again: GC's grace period must see it as fresh.
    timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, st.block_path(h).c_str(), old, 0), 0);
    PutResult r = st.put(h, data);
    cr_assert(!r.stored);
    cr_assert(r.existed);
    auto age = std::chrono::system_clock::now() - st.stat(h)->mtime;
    cr_assert_lt(std::chrono::duration_cast<std::chrono::seconds>(age).count(), 60,
                 "a re-stored block gets a fresh mtime");
    cr_assert_eq(st.stats().blocks, 1u);
    cr_assert_eq(count_files(g_dir / "tmp"), 0u);
}

Test(block_store, hash_mismatch_stores_nothing) {
    BlockStore st(g_dir);
    std::string data = "real content";
    std::string wrong = sha256_hex("other content");
    cr_assert_eq(kind_of([&] { st.put(wrong, data); }), ErrorKind::hash_mismatch);
    cr_assert(!st.has(wrong));
    cr_assert(!st.has(sha256_hex(data)));
    cr_assert_eq(count_files(g_dir / "blocks"), 0u);
    cr_assert_eq(count_files(g_dir / "tmp"), 0u);

    // Same through the streaming writer, which did write a temp file.
    auto w = st.writer();
    w.append(data);
    cr_assert_eq(count_files(g_dir / "tmp"), 1u);
    cr_assert_eq(kind_of([&] { w.commit(wrong); }), ErrorKind::hash_mismatch);
    cr_assert(!w.active());
    cr_assert_eq(count_files(g_dir / "blocks"), 0u);
    cr_assert_eq(count_files(g_dir / "tmp"), 0u);
}

Test(block_store, invalid_hex_rejected) {
    BlockStore st(g_dir);
    std::string good = sha256_hex("x");
    std::string upper = good;
    for (auto& c : upper)
        c = static_cast<char>(toupper(c));
    std::vector<std::string> bad = {
        upper,
        good.substr(0, 63),
        good + "0",
        "",
        "../" + good.substr(3),
        "../../../../etc/passwd",
        good.substr(0, 62) + "/x",
        good.substr(0, 63) + "g",
        std::string("\0", 1) + good.substr(1),
    };
    for (const auto& b : bad) {
        cr_assert_eq(kind_of([&] { st.put(b, "x"); }), ErrorKind::invalid_hash, "put '%s'",
                     b.c_str());
        cr_assert_eq(kind_of([&] { st.has(b); }), ErrorKind::invalid_hash);
        cr_assert_eq(kind_of([&] { st.stat(b); }), ErrorKind::invalid_hash);
        cr_assert_eq(kind_of([&] { st.open_read(b); }), ErrorKind::invalid_hash);
        cr_assert_eq(kind_of([&] { st.remove(b); }), ErrorKind::invalid_hash);
        cr_assert_eq(kind_of([&] { st.missing({good, b}); }), ErrorKind::invalid_hash);
        if (!b.empty()) { // empty expected hash means "accept computed" in commit()
            auto w = st.writer();
            w.append("x");
            cr_assert_eq(kind_of([&] { w.commit(b); }), ErrorKind::invalid_hash);
        }
    }
    cr_assert_eq(count_files(g_dir), 0u);
}

Test(block_store, too_large_rejected) {
    BlockStore st(g_dir);
    std::string big = pattern(max_block_size + 1, 3);
    cr_assert_eq(kind_of([&] { st.put(sha256_hex(big), big); }), ErrorKind::too_large);

    auto w = st.writer();
    w.append(std::string_view(big).substr(0, max_block_size));
    cr_assert_eq(kind_of([&] { w.append("y"); }), ErrorKind::too_large);
    cr_assert(!w.active());
    cr_assert_eq(count_files(g_dir), 0u);
}

Test(block_store, streaming_writer_chunks) {
    BlockStore st(g_dir);
    std::string data = pattern(3 * 1024 * 1024 + 17, 5);
    std::string h = sha256_hex(data);
    auto w = st.writer();
    for (std::size_t off = 0; off < data.size(); off += 65521)
        w.append(std::string_view(data).substr(off, 65521));
    cr_assert_eq(w.size(), data.size());
    cr_assert(!st.has(h), "block visible before commit");
    PutResult r = w.commit(h);
    cr_assert(r.stored);
    cr_assert_eq(r.size, data.size());
    cr_assert_eq(read_file(st.block_path(h)), data);
    cr_assert_eq(count_files(g_dir / "tmp"), 0u);

    // Empty expected hash: accept the computed one; second time it already exists.
    auto w2 = st.writer();
    w2.append(data.substr(0, 10));
    PutResult r2 = w2.commit();
    cr_assert_eq(std::string(r2.hash), std::string(sha256_hex(data.substr(0, 10))));
    cr_assert(r2.stored);
    auto w3 = st.writer();
    w3.append(data);
    PutResult r3 = w3.commit();
    cr_assert(r3.existed);
    cr_assert(!r3.stored);
    cr_assert_eq(count_files(g_dir / "tmp"), 0u);
    cr_assert_eq(st.stats().blocks, 2u);
}

Test(block_store, writer_abort_leaves_nothing) {
    BlockStore st(g_dir);
    {
        auto w = st.writer();
        w.append("partial data");
        cr_assert_eq(count_files(g_dir / "tmp"), 1u);
        w.abort();
        w.abort(); // idempotent
        cr_assert_eq(kind_of([&] { w.append("more"); }), ErrorKind::io);
    }
    {
        auto w = st.writer();
        w.append("dropped by the destructor");
        auto moved = std::move(w);
        cr_assert(!w.active());
        cr_assert(moved.active());
    }
    cr_assert_eq(count_files(g_dir), 0u);
    cr_assert_eq(st.stats().blocks, 0u);
}

Test(block_store, missing_list_and_remove) {
    BlockStore st(g_dir);
    std::string a = sha256_hex("a"), b = sha256_hex("b"), c = sha256_hex("c");
    st.put(a, "a");
    st.put(c, "c");
    auto m = st.missing({a, b, c, b});
    cr_assert_eq(m.size(), 1u);
    cr_assert_eq(std::string(m[0]), std::string(b));
    cr_assert(st.missing({}).empty());

    cr_assert(st.remove(a));
    cr_assert(!st.remove(a));
    cr_assert(!st.has(a));
    cr_assert_eq(st.open_read(a), -1);
    cr_assert(!st.stat(a).has_value());
    cr_assert(!st.verify(a));
    m = st.missing({a, b, c});
    cr_assert_eq(m.size(), 2u);
    cr_assert_eq(std::string(m[0]), std::string(a));
    cr_assert_eq(std::string(m[1]), std::string(b));
}

Test(block_store, for_each_ignores_foreign_files) {
    BlockStore st(g_dir);
    std::set<std::string> put;
    for (unsigned i = 0; i < 50; ++i) {
        std::string d = pattern(i * 13, i);
        put.insert(st.put(sha256_hex(d), d).hash);
    }
    // Junk that must not be reported as blocks.
    std::string h = *put.begin();
    fs::path leaf = g_dir / "blocks" / h.substr(0, 2) / h.substr(2, 2);
    std::ofstream(leaf / "notes.txt") << "x";
    std::string wrong_dir = sha256_hex("elsewhere");
    std::ofstream(leaf / wrong_dir) << "elsewhere"; // valid name, wrong fan-out directory
    fs::create_directories(g_dir / "blocks" / "zz" / "zz");
    std::ofstream(g_dir / "blocks" / "zz" / "zz" / h) << "x";

    std::set<std::string> seen;
    st.for_each([&](const BlockInfo& b) {
        seen.insert(b.hash);
        cr_assert_eq(b.path, st.block_path(b.hash));
    });
    cr_assert(seen == put);
    cr_assert_eq(st.stats().blocks, 50u);
}

Test(block_store, stale_parts_cleaned_on_open) {
    {
        BlockStore st(g_dir);
        st.put(sha256_hex("keep"), "keep");
    }
    std::ofstream(g_dir / "tmp" / "deadbeef.part") << "torn";
    std::ofstream(g_dir / "tmp" / "0123.part") << "";
    cr_assert_eq(count_files(g_dir / "tmp"), 2u);
    BlockStore st(g_dir);
    cr_assert_eq(count_files(g_dir / "tmp"), 0u);
    cr_assert(st.has(sha256_hex("keep")));
}

// kill -9 while a child writes blocks: every block it reported as committed is present and
// intact, and nothing under blocks/ has content that differs from its name.
Test(block_store, kill9_during_writes, .timeout = 60) {
    { BlockStore init(g_dir); }
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        try {
            BlockStore st(g_dir);
            for (unsigned i = 0;; ++i) {
                std::string d = pattern(4096 + (i * 7919) % (512 * 1024), i + 1);
                std::string h = sha256_hex(d);
                if (i % 2 == 0) {
                    st.put(h, d);
                } else {
                    auto w = st.writer();
                    for (std::size_t off = 0; off < d.size(); off += 10000)
                        w.append(std::string_view(d).substr(off, 10000));
                    w.commit(h);
                }
                std::string line = h + "\n";
                if (write(fds[1], line.data(), line.size()) != (ssize_t)line.size()) _exit(3);
            }
        } catch (...) {
            _exit(2);
        }
    }
    close(fds[1]);
    // Let it commit a good number of blocks, then kill it mid-stream.
    std::string got;
    char buf[4096];
    while (std::count(got.begin(), got.end(), '\n') < 40) {
        ssize_t r = read(fds[0], buf, sizeof buf);
        cr_assert_gt(r, 0, "child died early");
        got.append(buf, static_cast<std::size_t>(r));
    }
    usleep(20 * 1000);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    for (ssize_t r; (r = read(fds[0], buf, sizeof buf)) > 0;)
        got.append(buf, static_cast<std::size_t>(r));
    close(fds[0]);

    std::vector<std::string> reported;
    std::size_t pos = 0;
    for (std::size_t nl; (nl = got.find('\n', pos)) != std::string::npos; pos = nl + 1)
        reported.push_back(got.substr(pos, nl - pos));
    cr_assert_geq(reported.size(), 40u);

    BlockStore st(g_dir);
    cr_assert_eq(count_files(g_dir / "tmp"), 0u, "stale .part files not removed");
    for (const auto& h : reported) {
        cr_assert(st.has(h), "reported block %s missing", h.c_str());
        cr_assert(st.verify(h), "reported block %s corrupt", h.c_str());
    }
    std::size_t n = 0;
    st.for_each([&](const BlockInfo& b) {
        ++n;
        cr_assert_eq(sha256_hex(read_file(b.path)), b.hash, "torn block %s served", b.hash.c_str());
    });
    cr_assert_geq(n, reported.size());
    cr_assert_eq(count_files(g_dir / "blocks"), n);
}

// A full disk gives disk_full, keeps nothing partial, and the store keeps working.
Test(block_store, disk_full) {
    fs::path mnt = g_dir / "small";
    fs::create_directories(mnt);
    if (mount("tmpfs", mnt.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0)
        cr_skip_test("cannot mount a 1 MiB tmpfs (%s); needs root/CAP_SYS_ADMIN", strerror(errno));
    g_mount = mnt;
    BlockStore st(mnt);

    std::string big = pattern(2 * 1024 * 1024, 11);
    cr_assert_eq(kind_of([&] { st.put(sha256_hex(big), big); }), ErrorKind::disk_full);
    cr_assert_eq(count_files(mnt / "tmp"), 0u);
    cr_assert_eq(count_files(mnt / "blocks"), 0u);

    auto w = st.writer();
    ErrorKind k = kind_of([&] {
        for (std::size_t off = 0; off < big.size(); off += 65536)
            w.append(std::string_view(big).substr(off, 65536));
    });
    cr_assert_eq(k, ErrorKind::disk_full);
    cr_assert(!w.active());
    cr_assert_eq(count_files(mnt / "tmp"), 0u);

    // Space is back: a small block still goes in.
    std::string small = pattern(1000, 12);
    cr_assert(st.put(sha256_hex(small), small).stored);
    cr_assert(st.verify(sha256_hex(small)));
}

// seal() + install(): the two halves of commit() that the blob upload splits across threads.
Test(block_store, sealed_block_install_and_drop) {
    BlockStore store(g_dir);
    std::string data = pattern(3 * 1024 * 1024 + 17, 7);
    std::string hex = sha256_hex(data);

    BlockWriter deferred = store.writer(/*defer_hash=*/true);
    deferred.append(std::string_view(data).substr(0, 1000000));
    deferred.append(std::string_view(data).substr(1000000));
    SealedBlock sealed = deferred.seal();
    cr_expect(sealed.hash().empty(), "a deferred writer knows no hash before install()");
    cr_expect(!store.has(hex), "a sealed block is not visible yet");
    PutResult r = sealed.install();
    cr_expect_eq(r.hash, hex, "install() hashes the content read back");
    cr_expect(r.stored && store.has(hex) && read_file(store.block_path(hex)) == data);

    // The same content again: dropped as a duplicate, nothing left in tmp.
    BlockWriter again = store.writer(true);
    again.append(data);
    PutResult r2 = again.seal().install();
    cr_expect(r2.existed && !r2.stored && r2.hash == hex);

    // Destroyed without install(): the temp file goes.
    {
        BlockWriter w = store.writer(true);
        w.append("abandoned");
        SealedBlock s = w.seal();
    }
    cr_expect_eq(count_files(g_dir / "tmp"), 0u, "no temp file survives");
    cr_expect(!store.has(sha256_hex("abandoned")));

    // A deferred writer cannot check an expected hash; it refuses instead of storing.
    BlockWriter w = store.writer(true);
    w.append("x");
    bool refused = false;
    try {
        w.seal(sha256_hex("x"));
    } catch (const BlockError&) {
        refused = true;
    }
    cr_expect(refused && count_files(g_dir / "tmp") == 0);
}
