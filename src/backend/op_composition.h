// Compound ops written in terms of the simple ones, for backends that do not fuse them.
// Thread-safety: as the Ops they drive (one thread at a time).
#pragma once

#include "backend/ops.h"

namespace tokenfab {

// MoeBlock as its four steps: RmsNorm into args.normed, the router MatMul into args.logits,
// MoeRoute into args.expert_ids / expert_weights, MoeExperts into args.residual.
Status ComposeMoeBlock(Ops& ops, const MoeBlockArgs& args);

// ProjectionChain as its stages' NormMatMul, MatMulAdd or MatMul, in order.
Status ComposeProjectionChain(Ops& ops, const ProjectionStage* stages, int count);

// The MoeExperts step of a MoeBlock: its normed rows, routing, experts and residual.
MoeArgs MoeBlockExperts(const MoeBlockArgs& args);

}  // namespace tokenfab
