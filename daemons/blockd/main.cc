// strata-blockd: block server and CDN edge cache.
// This release provides the common daemon runtime only (control socket, health, metrics,
// status, reload); the role itself comes with its own issue.
#include "daemon/runtime.hh"

int main(int argc, char** argv) {
    static const strata::daemon::Spec spec{
        .name = "blockd",
        .summary = "Strata block server and CDN edge cache.",
        .state_dir = "/var/lib/strata/blocks",
    };
    return strata::daemon::main(argc, argv, spec);
}
