// strata-metad: metadata server on LMDB.
// This release provides the common daemon runtime only (control socket, health, metrics,
// status, reload); the role itself comes with its own issue.
#include "daemon/runtime.hh"

int main(int argc, char** argv) {
    static const strata::daemon::Spec spec{
        .name = "metad",
        .summary = "Strata metadata server on LMDB.",
        .state_dir = "/var/lib/strata/meta",
    };
    return strata::daemon::main(argc, argv, spec);
}
