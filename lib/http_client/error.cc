#include "http_client/error.hh"

namespace strata::http_client {

std::string_view kind_name(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::invalid_argument:
        return "invalid_argument";
    case ErrorKind::not_found:
        return "not_found";
    case ErrorKind::permission_denied:
        return "permission_denied";
    case ErrorKind::refused:
        return "refused";
    case ErrorKind::resolve:
        return "resolve";
    case ErrorKind::connect:
        return "connect";
    case ErrorKind::timeout:
        return "timeout";
    case ErrorKind::transfer:
        return "transfer";
    case ErrorKind::bad_response:
        return "bad_response";
    case ErrorKind::too_large:
        return "too_large";
    case ErrorKind::cancelled:
        return "cancelled";
    case ErrorKind::internal:
        return "internal";
    }
    return "unknown";
}

} // namespace strata::http_client
