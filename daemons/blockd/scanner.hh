// Malware scanning for strata-blockd: a libclamav engine loaded once from a signature
// directory (ClamAV .cvd/.cld/.hdb/.ndb/.ldb/... files) and shared by all requests.
//
// The engine is built and compiled in the constructor and never changed afterwards; libclamav
// allows concurrent scans on one compiled engine, so scan() may be called from any number of
// threads at once (no reload: build a new Scanner and swap the shared_ptr to pick up new
// signatures).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/types.h>

struct cl_engine;

namespace strata::blockd {

enum class Verdict { clean, infected, unavailable };

const char* to_string(Verdict v);

struct ScanResult {
    Verdict verdict = Verdict::unavailable;
    std::string signature; // name of the matching signature (infected only)
    std::string reason;    // why the scan did not run or failed (unavailable only)
};

// Reads up to `count` bytes at `offset` of the content into buf; returns how many (0 at the
// end), or -1 on error. Called by libclamav, possibly not in order.
using PreadFn = std::function<ssize_t(void* buf, std::size_t count, std::uint64_t offset)>;

class Scanner {
public:
    // Loads every signature file of `dir` and compiles the engine. max_scan_bytes (0: the
    // libclamav defaults) raises the engine's file and scan size limits: content larger than
    // that is not scanned (verdict unavailable). Throws std::runtime_error when libclamav
    // fails or the directory holds no signature.
    explicit Scanner(const std::filesystem::path& dir, std::uint64_t max_scan_bytes = 0);
    ~Scanner();
    Scanner(const Scanner&) = delete;
    Scanner& operator=(const Scanner&) = delete;

    // nullptr when `dir` is missing or holds no file at all (scanning is then off); throws
    // like the constructor when it holds files libclamav cannot load.
    static std::shared_ptr<Scanner> load_if_present(const std::filesystem::path& dir,
                                                    std::uint64_t max_scan_bytes = 0);

    // Scans `size` bytes read through `read`, as one stream: signatures spanning block
    // boundaries are found. Nothing is copied whole into memory by this code (libclamav maps
    // pages through the callback). Thread-safe.
    ScanResult scan(std::uint64_t size, const PreadFn& read) const;
    // Scans an open file. Thread-safe.
    ScanResult scan_fd(int fd) const;

    unsigned signatures() const noexcept { return signatures_; }
    std::uint64_t max_scan_bytes() const noexcept { return max_scan_bytes_; }
    const std::filesystem::path& directory() const noexcept { return dir_; }

private:
    cl_engine* engine_ = nullptr;
    unsigned signatures_ = 0;
    std::uint64_t max_scan_bytes_ = 0;
    std::filesystem::path dir_;
};

} // namespace strata::blockd
