// Driver of tests/bench/page-sync: what one durable commit costs on this disk when its pages
// are scattered over a file (a copy-on-write B-tree such as LMDB writes each dirty page at a
// page number taken from its free list) against the same number of pages appended in one
// run (a write-ahead log, as PostgreSQL commits). Both then call fdatasync, alternating
// round by round.
//
//   page_sync --file PATH [--pages K] [--rounds N] [--file-mib M] [--seed S]
//
// The file (M MiB, written with 4 KiB writes, so that the page cache holds it in 4 KiB
// folios as a database written page by page) is removed at the end. Prints per side the
// mean milliseconds per commit (writes, fdatasync) and durable pages per second; last line
// "SUMMARY scattered_ms=A sequential_ms=B".
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t page = 4096;

// Thrown, not exit(): the scratch file's destructor removes it on the way out.
[[noreturn]] void die(const std::string& why) {
    throw std::runtime_error(why);
}

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "page_sync: %s\nusage: page_sync --file PATH [--pages K] [--rounds N] "
                 "[--file-mib M] [--seed S]\n",
                 why);
    std::exit(2);
}

// Removes the scratch file however the run ends (exit on error included).
struct ScratchFile {
    std::string path;
    int fd = -1;
    explicit ScratchFile(std::string p) : path(std::move(p)) {
        fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) die("open " + path + ": " + std::strerror(errno));
    }
    ~ScratchFile() {
        ::close(fd);
        ::unlink(path.c_str());
    }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;
};

void write_all(int fd, const char* data, std::size_t n, off_t at) {
    while (n) {
        ssize_t w = ::pwrite(fd, data, n, at);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die(std::string("pwrite: ") + std::strerror(errno));
        data += w;
        n -= static_cast<std::size_t>(w);
        at += w;
    }
}

void sync(int fd) {
    if (::fdatasync(fd) != 0) die(std::string("fdatasync: ") + std::strerror(errno));
}

double ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

struct Side {
    double write_ms = 0, sync_ms = 0;
};

} // namespace

int run(int argc, char** argv) {
    std::string file;
    unsigned long pages = 80, rounds = 200, file_mib = 256, seed = 1;
    for (int i = 1; i < argc; i += 2) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(("missing value after " + a).c_str());
        std::string v = argv[i + 1];
        char* end = nullptr;
        unsigned long n = std::strtoul(v.c_str(), &end, 10);
        bool number = !v.empty() && !*end;
        if (a == "--file")
            file = v;
        else if (a == "--pages" && number && n >= 1 && n <= 4096)
            pages = n;
        else if (a == "--rounds" && number && n >= 1 && n <= 100000)
            rounds = n;
        else if (a == "--file-mib" && number && n >= 16 && n <= 65536)
            file_mib = n;
        else if (a == "--seed" && number)
            seed = n;
        else
            usage(("bad option or value: " + a + " " + v).c_str());
    }
    if (file.empty()) usage("--file is required");
    const std::uint64_t file_pages = file_mib * (1 << 20) / page;
    if (pages * 4 > file_pages) usage("--pages too large for --file-mib");

    ScratchFile f(file);
    std::vector<char> buf(pages * page, 'x');
    for (std::uint64_t p = 0; p < file_pages; ++p)
        write_all(f.fd, buf.data(), page, static_cast<off_t>(p * page));
    sync(f.fd);

    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::uint64_t> any(0, file_pages - 1),
        start(0, file_pages - pages);
    Side scattered, sequential;
    for (unsigned long r = 0; r < rounds; ++r) {
        // Scattered: K distinct pages in ascending order (as LMDB flushes its dirty list),
        // one write each: no two are adjacent by more than chance.
        std::set<std::uint64_t> at;
        while (at.size() < pages)
            at.insert(any(rng));
        auto t0 = Clock::now();
        for (std::uint64_t p : at)
            write_all(f.fd, buf.data(), page, static_cast<off_t>(p * page));
        auto t1 = Clock::now();
        sync(f.fd);
        auto t2 = Clock::now();
        scattered.write_ms += ms(t1 - t0);
        scattered.sync_ms += ms(t2 - t1);
        // Sequential: the same number of pages in one write.
        auto off = static_cast<off_t>(start(rng) * page);
        t0 = Clock::now();
        write_all(f.fd, buf.data(), buf.size(), off);
        t1 = Clock::now();
        sync(f.fd);
        t2 = Clock::now();
        sequential.write_ms += ms(t1 - t0);
        sequential.sync_ms += ms(t2 - t1);
    }
    auto report = [&](const char* name, const Side& s) {
        double per = (s.write_ms + s.sync_ms) / static_cast<double>(rounds);
        std::printf("%-10s %lu pages per commit: writes %.3f ms + fdatasync %.3f ms = %.3f ms "
                    "(%.0f durable pages/s)\n",
                    name, pages, s.write_ms / static_cast<double>(rounds),
                    s.sync_ms / static_cast<double>(rounds), per,
                    static_cast<double>(pages) * 1000.0 / per);
        return per;
    };
    double a = report("scattered", scattered);
    double b = report("sequential", sequential);
    std::printf("SUMMARY scattered_ms=%.3f sequential_ms=%.3f\n", a, b);
    return 0;
}

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "page_sync: %s\n", e.what());
        return 1;
    }
}
