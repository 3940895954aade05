// Elementwise layers for MindSpore's CPU backend, as MindSpore "aot" custom operators.
//
// Why: MindSpore 2.10's CPU elementwise kernels take 1-2 ms for a few million floats each, and
// a leaky ReLU written in its ops is five of them forward and five backward; a dropout mask
// (a hash per element, see models.layers.Dropout) a dozen. One pass here does either at
// memory speed. Float32 tensors of any shape, contiguous.
//
//   LeakyRelu(x, slope f32 [1])            -> y  = x > 0 ? x : slope * x
//   LeakyReluGrad(dy, x, slope f32 [1])    -> dx = x > 0 ? dy : (x < 0 ? slope * dy : 0)
//   Dropout(x, state i32 [4], scale f32 [1]) -> x * keep, keep = `scale` where the top 24 bits
//       of the element's hash are >= threshold, else 0. state = (calls, salt, index of x's
//       first element, threshold); threshold = floor(p * 2^24), scale = 1 / (1 - p). Its own
//       gradient: dx = Dropout(dy, state, scale), the mask computed again (cheaper than kept).
//
// The results are bit for bit those of the graph-op versions in models.layers (relu(x) -
// slope * relu(-x), and the same integer hash), so a run may move between the two.

#include <omp.h>

#include <cstdint>

namespace {

int64_t count(int ndims, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndims; i++) n *= shape[i];
  return n;
}

// A 32-bit integer mix (multiply-xorshift), as models.layers.Dropout writes it in uint32
// graph ops.
inline uint32_t mix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  return h;
}

}  // namespace

extern "C" {

int LeakyRelu(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float slope = *static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t n = count(ndims[0], shapes[0]);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
  return 0;
}

int LeakyReluGrad(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float slope = *static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[3]);
  const int64_t n = count(ndims[0], shapes[0]);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : (x[i] < 0.0f ? slope * dy[i] : 0.0f);
  return 0;
}

int Dropout(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const int32_t *state = static_cast<const int32_t *>(params[1]);
  const float scale = *static_cast<const float *>(params[2]);
  float *y = static_cast<float *>(params[3]);
  const int64_t n = count(ndims[0], shapes[0]);
  const uint32_t seed = mix(static_cast<uint32_t>(state[0]) * 0x85ebca77u + static_cast<uint32_t>(state[1]));
  const uint32_t first = static_cast<uint32_t>(state[2]), threshold = static_cast<uint32_t>(state[3]);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const uint32_t h = mix((first + static_cast<uint32_t>(i)) * 0x9e3779b1u + seed);
    y[i] = x[i] * ((h >> 8) >= threshold ? scale : 0.0f);
  }
  return 0;
}

}  // extern "C"
