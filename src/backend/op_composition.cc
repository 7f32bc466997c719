#include "backend/op_composition.h"

namespace tokenfab {

Status ComposeMoeBlock(Ops& ops, const MoeBlockArgs& a) {
  TF_RETURN_IF_ERROR(ops.RmsNorm(a.residual, a.norm_weight, a.norm_eps, a.normed));
  TF_RETURN_IF_ERROR(ops.MatMul(a.normed, a.router, Tensor(), a.logits));
  TF_RETURN_IF_ERROR(ops.MoeRoute(a.logits, a.normalize, a.expert_ids, a.expert_weights));
  return ops.MoeExperts(MoeBlockExperts(a));
}

Status ComposeProjectionChain(Ops& ops, const ProjectionStage* stages, int count) {
  for (int i = 0; i < count; ++i) {
    const ProjectionStage& s = stages[i];
    if (!s.norm_weight.empty()) {
      if (s.accumulate)
        return InvalidArgumentError("ProjectionChain: a normalised stage cannot accumulate");
      TF_RETURN_IF_ERROR(
          ops.NormMatMul(s.x, s.norm_weight, s.norm_eps, s.w, s.bias, s.gated, s.out));
    } else if (s.gated) {
      return InvalidArgumentError("ProjectionChain: a gated stage needs its norm weight");
    } else if (s.accumulate) {
      TF_RETURN_IF_ERROR(ops.MatMulAdd(s.x, s.w, s.bias, s.out));
    } else {
      TF_RETURN_IF_ERROR(ops.MatMul(s.x, s.w, s.bias, s.out));
    }
  }
  return Status::Ok();
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
