// Internal: one HTTP exchange on a libcurl easy handle, shared by Client and AsyncClient.
// Not part of the public API.
#pragma once

#include "http_client/message.hh"
#include "http_client/options.hh"
#include "http_client/target.hh"

#include <curl/curl.h>
#include <memory>

namespace strata::http_client::detail {

// curl_global_init, once per process, before the first handle.
void global_init();

struct EasyDeleter {
    void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;

// A fresh easy handle; throws Error(internal).
EasyPtr new_easy();

// Throws Error(invalid_argument) for a method, path or header that cannot go on the wire.
void validate(const Request& request);

// Configures an easy handle for one validated request and owns everything libcurl points into
// (URL, header list, body, buffers) until the exchange ends. The handle is reset first, which
// keeps its cached keep-alive connection.
class Transfer {
public:
    Transfer(EasyPtr easy, const Target& target, const Options& options, Request request);
    ~Transfer();
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;

    CURL* easy() const { return easy_.get(); }
    // "GET /v1/status on unix:/run/strata/metad.sock", for error messages.
    std::string describe() const;
    // Turns the code of curl_easy_perform / CURLMSG_DONE into a response or a classified error.
    Result finish(CURLcode code);
    // Gives the handle back for reuse, reset so it points into nothing this object owns.
    EasyPtr release();

private:
    static size_t on_body(char* data, size_t size, size_t n, void* self);
    static size_t on_header(char* data, size_t size, size_t n, void* self);
    static size_t on_read(char* buffer, size_t size, size_t n, void* self);
    Error classify(CURLcode code) const;

    EasyPtr easy_;
    const Target& target_;
    const Options& options_;
    Request request_;
    std::string url_;
    std::string user_agent_;
    curl_slist* header_list_ = nullptr;
    Response response_;
    bool too_large_ = false;
    bool out_of_memory_ = false;
    char error_buffer_[CURL_ERROR_SIZE] = {};
};

} // namespace strata::http_client::detail
