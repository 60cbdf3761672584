// Loading NAME.conf plus NAME.conf.d/*.conf against a Schema.
// Every problem is reported as FILE:LINE:COLUMN: KEY: MESSAGE; all of them at once, not just
// the first, so an operator fixes a file in one pass.
#pragma once

#include "config/schema.hh"

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace strata::config {

struct Problem {
    std::string file;
    std::uint32_t line = 0; // 0 when the problem concerns the whole file
    std::uint32_t column = 0;
    std::string key; // may be empty (syntax errors)
    std::string message;

    std::string to_string() const;
};

class Error : public std::runtime_error {
public:
    explicit Error(std::vector<Problem> problems);
    const std::vector<Problem>& problems() const { return problems_; }

private:
    std::vector<Problem> problems_;
};

class Config {
public:
    bool boolean(const std::string& key) const;
    std::int64_t integer(const std::string& key) const;
    const std::string& string(const std::string& key) const;
    const std::vector<std::string>& string_list(const std::string& key) const;
    const Value& value(const std::string& key) const;

    // "FILE:LINE" where the value was set, or "default".
    std::string origin(const std::string& key) const;
    const std::vector<std::string>& files() const { return files_; }

    // Canonical "key = value" lines, sorted; the digest hashes exactly this text.
    std::string dump() const;
    std::string digest() const; // "sha256:<hex>"

    // Keys whose value differs from `other` (used on reload to find restart-only changes).
    std::vector<std::string> changed_keys(const Config& other) const;

private:
    friend class Loader;
    std::map<std::string, Value> values_;
    std::map<std::string, std::string> origins_;
    std::vector<std::string> files_;
};

// Loads `file` and then every `file`.d/*.conf in lexical order; later files override keys.
// Throws config::Error listing every problem found.
Config load(const Schema& schema, const std::filesystem::path& file);

// Parses one document held in memory (tests and fuzzing). `name` is used in messages.
Config parse(const Schema& schema, std::string_view text, std::string_view name);

// The conf.d files that load() would read after `file`, in order.
std::vector<std::filesystem::path> dropin_files(const std::filesystem::path& file);

} // namespace strata::config
