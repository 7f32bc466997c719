#include "backend/op_composition.h"

namespace tokenfab {

Status ComposeMoeBlock(Ops& ops, const MoeBlockArgs& a) {
  TF_RETURN_IF_ERROR(ops.RmsNorm(a.residual, a.norm_weight, a.norm_eps, a.normed));
  TF_RETURN_IF_ERROR(ops.MatMul(a.normed, a.router, Tensor(), a.logits));
  TF_RETURN_IF_ERROR(ops.MoeRoute(a.logits, a.normalize, a.expert_ids, a.expert_weights));
  return ops.MoeExperts(MoeBlockExperts(a));
}

MoeArgs MoeBlockExperts(const MoeBlockArgs& a) {
  MoeArgs experts;
  experts.x = a.normed;
  experts.expert_ids = a.expert_ids;
  experts.expert_weights = a.expert_weights;
  experts.gate_up = a.gate_up;
  experts.down = a.down;
  experts.residual = a.residual;
  return experts;
}

}  // namespace tokenfab
