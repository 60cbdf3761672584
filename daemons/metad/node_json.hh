// Nodes as JSON text, written directly into a string: stat and listings are metad's hottest
// answers, and building nlohmann::json objects for them cost more than the lookups.
#pragma once

#include "meta_store.hh"

#include <string>

namespace strata::metad {

// Appends the node as a JSON object (ids as decimal strings).
void append_node_json(std::string& out, const Node& n);
void append_node_json(std::string& out, const NodeView& n);
// Appends s as a JSON string literal (quotes and escapes; invalid UTF-8 becomes U+FFFD).
void append_json_string(std::string& out, std::string_view s);

} // namespace strata::metad
