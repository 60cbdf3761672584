// strata-blockd: block server (content-addressed chunks) and, later, CDN edge cache.
// This release stores blocks (PUT /v1/blocks/{sha256}, POST /v1/blocks/missing) on top of
// the common daemon runtime; blobs, verification, serving, signed URLs and GC are not
// implemented yet.
#include "block_routes.hh"
#include "daemon/runtime.hh"

#include <memory>

namespace {

std::unique_ptr<strata::blockd::BlockStore> g_store;

void start(strata::daemon::Runtime& rt) {
    g_store = std::make_unique<strata::blockd::BlockStore>(rt.state_dir()->path());
    strata::blockd::add_block_routes(rt.control_router(), *g_store, rt.metrics());
}

} // namespace

int main(int argc, char** argv) {
    static const strata::daemon::Spec spec{
        .name = "blockd",
        .summary = "Strata block server and CDN edge cache.",
        .state_dir = "/var/lib/strata/blocks",
        .start = start,
    };
    return strata::daemon::main(argc, argv, spec);
}
