// Who may store blocks. blockd keeps no users and no keys: it trusts the peers of its unix
// socket (its mode lets only _strata in: metad, transcoded, the gateway, operators) and,
// for what the gateway proxies, the identity the gateway verified and sends in
// X-Strata-Caller (proxy.hh): "user=ID; session=SID; scopes=A,B" for a session token,
// "user=ID; key=KID; scopes=A,B" for an API key, "anonymous" when it verified nobody.
//
// require_scope: no X-Strata-Caller (a local peer of its own) passes; "anonymous", or a
// caller that names no Strata user (a JWT's), gets 401 unauthenticated; a caller whose
// scopes= lacks `scope` gets 403 insufficient_scope (a read-only API key uploading).
// blockd cannot tell a revoked key: the gateway refuses it, within its
// api_key_cache_seconds.
#pragma once

#include "http/message.hh"

#include <string_view>

namespace strata::blockd {

void require_scope(const http::Request& req, std::string_view scope);

} // namespace strata::blockd
