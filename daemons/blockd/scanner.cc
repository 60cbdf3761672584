#include "scanner.hh"

#include <algorithm>
#include <clamav.h>
#include <climits>
#include <cstring>
#include <mutex>
#include <system_error>

namespace strata::blockd {

namespace {

// libclamav cannot scan more than 2 GiB per file (design limit documented for MaxFileSize).
constexpr std::uint64_t kClamavHardLimit = INT_MAX;

void init_once() {
    static std::once_flag once;
    static cl_error_t rc = CL_SUCCESS;
    std::call_once(once, [] { rc = cl_init(CL_INIT_DEFAULT); });
    if (rc != CL_SUCCESS) throw std::runtime_error(std::string("cl_init: ") + cl_strerror(rc));
}

cl_scan_options default_options() {
    cl_scan_options o;
    std::memset(&o, 0, sizeof o);
    o.parse = ~0u; // every parser (archives, documents, executables, ...), as clamscan does
    return o;
}

ScanResult to_result(cl_error_t rc, const char* virname) {
    ScanResult r;
    if (rc == CL_VIRUS) {
        r.verdict = Verdict::infected;
        r.signature = virname ? virname : "unknown";
    } else if (rc == CL_CLEAN) {
        r.verdict = Verdict::clean;
    } else {
        r.verdict = Verdict::unavailable;
        r.reason = std::string("scan failed: ") + cl_strerror(rc);
    }
    return r;
}

off_t pread_trampoline(void* handle, void* buf, std::size_t count, off_t offset) {
    const auto& fn = *static_cast<const PreadFn*>(handle);
    try {
        return static_cast<off_t>(fn(buf, count, static_cast<std::uint64_t>(offset)));
    } catch (...) {
        return -1; // exceptions must not cross the C library
    }
}

} // namespace

const char* to_string(Verdict v) {
    switch (v) {
    case Verdict::clean:
        return "clean";
    case Verdict::infected:
        return "infected";
    case Verdict::unavailable:
        break;
    }
    return "unavailable";
}

Scanner::Scanner(const std::filesystem::path& dir, std::uint64_t max_scan_bytes) : dir_(dir) {
    init_once();
    engine_ = cl_engine_new();
    if (!engine_) throw std::runtime_error("cl_engine_new failed");
    try {
        if (max_scan_bytes != 0) {
            max_scan_bytes_ = std::min(max_scan_bytes, kClamavHardLimit);
            auto n = static_cast<long long>(max_scan_bytes_);
            cl_engine_set_num(engine_, CL_ENGINE_MAX_FILESIZE, n);
            cl_engine_set_num(engine_, CL_ENGINE_MAX_SCANSIZE, n);
        } else {
            int err = 0;
            auto n = cl_engine_get_num(engine_, CL_ENGINE_MAX_FILESIZE, &err);
            max_scan_bytes_ = err == 0 && n > 0 ? static_cast<std::uint64_t>(n) : kClamavHardLimit;
        }
        cl_error_t rc = cl_load(dir.c_str(), engine_, &signatures_, CL_DB_STDOPT);
        if (rc != CL_SUCCESS)
            throw std::runtime_error("cl_load " + dir.string() + ": " + cl_strerror(rc));
        if (signatures_ == 0) throw std::runtime_error("no ClamAV signatures in " + dir.string());
        rc = cl_engine_compile(engine_);
        if (rc != CL_SUCCESS)
            throw std::runtime_error(std::string("cl_engine_compile: ") + cl_strerror(rc));
    } catch (...) {
        cl_engine_free(engine_);
        engine_ = nullptr;
        throw;
    }
}

Scanner::~Scanner() {
    if (engine_) cl_engine_free(engine_);
}

std::shared_ptr<Scanner> Scanner::load_if_present(const std::filesystem::path& dir,
                                                  std::uint64_t max_scan_bytes) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return nullptr;
    if (std::filesystem::directory_iterator(dir, ec) == std::filesystem::directory_iterator())
        return nullptr;
    return std::make_shared<Scanner>(dir, max_scan_bytes);
}

ScanResult Scanner::scan(std::uint64_t size, const PreadFn& read) const {
    if (size > max_scan_bytes_) {
        return {Verdict::unavailable,
                {},
                "content of " + std::to_string(size) + " bytes is over the scan limit of " +
                    std::to_string(max_scan_bytes_)};
    }
    // Empty content: nothing can match a signature, and libclamav refuses empty maps.
    if (size == 0) return {Verdict::clean, {}, {}};
    // use_aging=1: libclamav may drop pages it has read, so memory stays bounded.
    cl_fmap_t* map = cl_fmap_open_handle(const_cast<PreadFn*>(&read), 0,
                                         static_cast<std::size_t>(size), pread_trampoline, 1);
    if (!map) return {Verdict::unavailable, {}, "cl_fmap_open_handle failed"};
    cl_scan_options options = default_options();
    const char* virname = nullptr;
    unsigned long scanned = 0;
    cl_error_t rc =
        cl_scanmap_callback(map, nullptr, &virname, &scanned, engine_, &options, nullptr);
    ScanResult r = to_result(rc, virname);
    cl_fmap_close(map);
    return r;
}

ScanResult Scanner::scan_fd(int fd) const {
    cl_scan_options options = default_options();
    const char* virname = nullptr;
    unsigned long scanned = 0;
    return to_result(cl_scandesc(fd, nullptr, &virname, &scanned, engine_, &options), virname);
}

} // namespace strata::blockd
