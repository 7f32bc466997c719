#include "model/rope.h"

#include <cmath>

namespace tokenfab {

std::vector<float> ComputeRopeInvFreq(const ModelConfig& config) {
  const int64_t dim = config.head_dim;
  const float base = static_cast<float>(config.rope.theta);
  std::vector<float> inv_freq(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) {
    // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in f32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv_freq[i] = 1.0f / std::pow(base, exponent);
  }
  const RopeConfig& rope = config.rope;
  if (rope.type == "linear") {
    for (float& f : inv_freq) f /= static_cast<float>(rope.factor);
  } else if (rope.type == "llama3") {
    // transformers' _compute_llama3_parameters: long wavelengths are divided by `factor`,
    // short ones kept, and the band between is interpolated smoothly.
    const float factor = static_cast<float>(rope.factor);
    const float low = static_cast<float>(rope.low_freq_factor);
    const float high = static_cast<float>(rope.high_freq_factor);
    const float old_len = static_cast<float>(rope.original_max_position_embeddings);
    const float low_freq_wavelen = old_len / low;
    const float high_freq_wavelen = old_len / high;
    for (float& f : inv_freq) {
      const float wavelen = static_cast<float>(2.0 * M_PI) / f;
      const float scaled = wavelen > low_freq_wavelen ? f / factor : f;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        const float smooth = (old_len / wavelen - low) / (high - low);
        f = (1.0f - smooth) * scaled / factor + smooth * scaled;
      } else {
        f = scaled;
      }
    }
  }
  return inv_freq;
}

}  // namespace tokenfab
