// Unit tests of IoPool and CommitPipeline: flushes run on worker threads, results come back
// in upload order, back-pressure bounds the blocks in flight, errors surface, aborts wait.

#include "io_pool.hh"
#include "sha256.hh"

#include <criterion/criterion.h>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace strata::blockd;
namespace fs = std::filesystem;

static fs::path g_dir;

static void make_dir() {
    std::string tmpl = (fs::temp_directory_path() / "strata-iopool-XXXXXX").string();
    cr_assert(mkdtemp(tmpl.data()) != nullptr);
    g_dir = tmpl;
}
static void remove_dir() {
    std::error_code ec;
    chmod(g_dir.c_str(), 0700);
    fs::remove_all(g_dir, ec);
}

TestSuite(io_pool, .init = make_dir, .fini = remove_dir);

static SealedBlock sealed(BlockStore& store, const std::string& data) {
    BlockWriter w = store.writer(true);
    w.append(data);
    return w.seal();
}

Test(io_pool, pipeline_keeps_order) {
    BlockStore store(g_dir);
    IoPool pool(3);
    CommitPipeline pipeline(pool, 2);
    std::vector<std::string> want;
    for (int i = 0; i < 20; ++i) {
        std::string data = "block number " + std::to_string(i) + std::string(100000 + i, 'x');
        want.push_back(sha256_hex(data));
        pipeline.add(sealed(store, data));
    }
    auto results = pipeline.finish();
    cr_assert_eq(results.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        cr_expect_eq(results[i].hash, want[i], "result %zu out of order", i);
        cr_expect(store.has(want[i]));
    }
}

Test(io_pool, flush_error_surfaces) {
    BlockStore store(g_dir);
    IoPool pool(2);
    std::string data = "cannot be installed";
    std::string hex = sha256_hex(data);
    // The first fan-out level of this hash is a regular file: mkdir/rename must fail.
    fs::path l1 = g_dir / "blocks" / hex.substr(0, 2);
    FILE* f = fopen(l1.c_str(), "w");
    cr_assert(f);
    fclose(f);
    CommitPipeline pipeline(pool, 4);
    pipeline.add(sealed(store, data));
    bool threw = false;
    try {
        pipeline.finish();
    } catch (const BlockError& e) {
        threw = e.kind() == ErrorKind::io;
    }
    cr_expect(threw, "the worker's BlockError reaches finish()");
    cr_expect(!store.has(hex));
    std::size_t left = 0;
    for (const auto& e : fs::directory_iterator(g_dir / "tmp"))
        left += e.is_regular_file();
    cr_expect_eq(left, 0u, "the failed block's temp file is removed");
}

Test(io_pool, abandoned_pipeline_waits_for_flushes) {
    BlockStore store(g_dir);
    IoPool pool(1);
    std::vector<std::string> hashes;
    {
        CommitPipeline pipeline(pool, 8);
        for (int i = 0; i < 6; ++i) {
            std::string data(500000, static_cast<char>('a' + i));
            hashes.push_back(sha256_hex(data));
            pipeline.add(sealed(store, data));
        }
    } // destroyed without finish(): an aborted upload
    for (const auto& h : hashes)
        cr_expect(store.has(h), "flushes in flight complete before the pipeline goes");
}

// The whole-content hash fed by the workers equals the hash of the blocks in upload order,
// whichever thread reads which block (many blocks over 3 threads, uneven sizes).
Test(io_pool, ordered_whole_hash) {
    BlockStore store(g_dir);
    IoPool pool(3);
    OrderedHash whole;
    Sha256 want;
    {
        CommitPipeline pipeline(pool, 4, &whole);
        for (int i = 0; i < 24; ++i) {
            std::string data(1000 + 37 * i + (i % 3) * 200000, static_cast<char>('A' + i));
            want.update(data);
            pipeline.add(sealed(store, data));
        }
        pipeline.finish();
    }
    auto got = whole.finish();
    cr_assert(got.has_value());
    cr_expect(to_hex(*got) == to_hex(want.finish()), "the order of blocks is kept");
}
