// strata-lbd: XDP/eBPF layer-4 load balancer in front of the gateways.
// This release provides the common daemon runtime only (control socket, health, metrics,
// status, reload); the role itself comes with its own issue.
#include "daemon/runtime.hh"

int main(int argc, char** argv) {
    static const strata::daemon::Spec spec{
        .name = "lbd",
        .summary = "Strata XDP/eBPF layer-4 load balancer in front of the gateways.",
        .state_dir = "",
    };
    return strata::daemon::main(argc, argv, spec);
}
