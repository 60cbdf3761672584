#include "blockd_files.hh"

#include "http_client/target.hh"
#include "media.hh"

#include <chrono>
#include <cstdio>
#include <curl/curl.h>
#include <memory>
#include <nlohmann/json.hpp>

namespace strata::transcoded {

namespace {

struct CurlDeleter {
    void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct FileDeleter {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using FilePtr = std::unique_ptr<std::FILE, FileDeleter>;

struct Sink {
    std::FILE* file = nullptr;
    std::string* text = nullptr; // or collect (small answers)
    std::uint64_t written = 0, max = 0;
    bool too_large = false, write_failed = false;
};

size_t on_body(char* data, size_t size, size_t n, void* p) {
    auto& s = *static_cast<Sink*>(p);
    size_t len = size * n;
    if (s.max && s.written + len > s.max) {
        s.too_large = true;
        return 0; // aborts the transfer
    }
    s.written += len;
    if (s.text) {
        s.text->append(data, len);
        return len;
    }
    if (std::fwrite(data, 1, len, s.file) != len) {
        s.write_failed = true;
        return 0;
    }
    return len;
}

// One easy handle aimed at `path` on the target; long transfers allowed (no total timeout),
// but a connection that moves less than 1 KiB/s for a minute is given up.
CurlPtr open(const http_client::Target& t, const std::string& path) {
    static const bool init = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    CurlPtr c(init ? curl_easy_init() : nullptr);
    if (!c) throw MediaError("libcurl cannot start", false);
    if (t.is_unix()) curl_easy_setopt(c.get(), CURLOPT_UNIX_SOCKET_PATH, t.socket_path().c_str());
    curl_easy_setopt(c.get(), CURLOPT_URL, t.url(t.path_prefix() + path).c_str());
    curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, on_body);
    return c;
}

long status_of(CURL* c) {
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

} // namespace

BlockdFiles::BlockdFiles(std::string target, std::function<void(double)> moving)
    : target_(std::move(target)), moving_(std::move(moving)) {}

namespace {

// CURLOPT_XFERINFOFUNCTION: tells `moving` at most once a second.
struct Ticker {
    const std::function<void(double)>* moving;
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
};

int on_transfer(void* p, curl_off_t dl_total, curl_off_t dl_now, curl_off_t ul_total,
                curl_off_t ul_now) {
    auto& t = *static_cast<Ticker*>(p);
    auto now = std::chrono::steady_clock::now();
    if (!*t.moving || now - t.last < std::chrono::seconds(1)) return 0;
    t.last = now;
    curl_off_t total = ul_total > 0 ? ul_total : dl_total, done = ul_total > 0 ? ul_now : dl_now;
    (*t.moving)(total > 0 ? double(done) / double(total) : -1);
    return 0;
}

void watch(CURL* c, Ticker& t) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_transfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
}

} // namespace

void BlockdFiles::fetch(const std::string& id, const std::filesystem::path& dest,
                        std::uint64_t max_bytes) const {
    auto t = http_client::Target::parse(target_);
    FilePtr f(std::fopen(dest.c_str(), "wb"));
    if (!f) throw MediaError("cannot create " + dest.string(), false);
    Sink sink{f.get(), nullptr, 0, max_bytes};
    auto c = open(t, "/v1/content/" + id);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &sink);
    Ticker ticker{&moving_};
    watch(c.get(), ticker);
    curl_easy_setopt(c.get(), CURLOPT_FAILONERROR, 0L);
    CURLcode rc = curl_easy_perform(c.get());
    long status = status_of(c.get());
    if (sink.too_large)
        throw MediaError("the source is larger than jobs.max_source_bytes (" +
                         std::to_string(max_bytes) + " bytes)");
    if (sink.write_failed) throw MediaError("cannot write the source to " + dest.string(), false);
    if (rc != CURLE_OK)
        throw MediaError(std::string("fetching the source from blockd: ") + curl_easy_strerror(rc),
                         false);
    if (status == 404)
        throw MediaError("the source " + id + " is no longer stored (the file was deleted)");
    if (status != 200)
        throw MediaError("fetching the source from blockd: HTTP " + std::to_string(status), false);
    if (std::fflush(f.get()) != 0) throw MediaError("cannot write " + dest.string(), false);
}

std::string BlockdFiles::store(const std::filesystem::path& file,
                               const std::string& media_type) const {
    auto t = http_client::Target::parse(target_);
    FilePtr f(std::fopen(file.c_str(), "rb"));
    if (!f) throw MediaError("cannot read the output " + file.string(), false);
    std::error_code ec;
    auto size = std::filesystem::file_size(file, ec);
    if (ec) throw MediaError("cannot read the output " + file.string(), false);
    std::string answer;
    Sink sink{nullptr, &answer, 0, 1 << 20};
    // The type goes in the query; a media type is [a-z0-9./+-], nothing to escape.
    auto c = open(t, "/v1/blobs?type=" + media_type);
    curl_easy_setopt(c.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(c.get(), CURLOPT_READDATA, f.get()); // default read callback: fread
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &sink);
    Ticker ticker{&moving_};
    watch(c.get(), ticker);
    struct curl_slist* headers =
        curl_slist_append(nullptr, "Content-Type: application/octet-stream");
    headers = curl_slist_append(headers, "Expect:");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> keep(headers, curl_slist_free_all);
    curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(c.get());
    long status = status_of(c.get());
    if (rc != CURLE_OK)
        throw MediaError(std::string("storing an output in blockd: ") + curl_easy_strerror(rc),
                         false);
    if (status != 201 && status != 200)
        throw MediaError("blockd refused an output (HTTP " + std::to_string(status) +
                             "): " + answer.substr(0, 300),
                         false);
    auto j = nlohmann::json::parse(answer, nullptr, false);
    if (!j.is_object() || !j.contains("id") || !j["id"].is_string() ||
        j["id"].get<std::string>().size() != 64)
        throw MediaError("blockd answered no content address for an output", false);
    return j["id"].get<std::string>();
}

} // namespace strata::transcoded
