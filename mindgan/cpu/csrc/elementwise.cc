// Elementwise layers for MindSpore's CPU backend, as MindSpore "aot" custom operators.
//
// Why: MindSpore 2.10's CPU elementwise kernels take 1-2 ms for a few million floats each, and
// a leaky ReLU written in its ops is five of them forward and five backward; a dropout mask
// (a hash per element, see models.layers.Dropout) a dozen. One pass here does either at
// memory speed. Float32 tensors of any shape, contiguous.
//
//   LeakyRelu(x, slope f32 [1])            -> y  = x > 0 ? x : slope * x (a ReLU at slope 0)
//   LeakyReluGrad(dy, x, slope f32 [1])    -> dx = x > 0 ? dy : (x < 0 ? slope * dy : 0)
//   Dropout(x, state i32 [4], scale f32 [1]) -> x * keep, keep = `scale` where the top 24 bits
//       of the element's hash are >= threshold, else 0. state = (calls, salt, index of x's
//       first element, threshold); threshold = floor(p * 2^24), scale = 1 / (1 - p). Its own
//       gradient: dx = Dropout(dy, state, scale), the mask computed again (cheaper than kept).
//
//   BatchNormTraining(x [N,C,H,W], gamma [C], beta [C], eps f32 [1])
//       -> y [N,C,H,W], mean [C], var [C] (the batch's, biased): y = (x - mean) / sqrt(var + eps)
//       * gamma + beta, statistics summed in double.
//   BatchNormTrainingGrad(dy, x, gamma, mean, var, eps) -> dx, dgamma, dbeta.
//
// The leaky ReLU and dropout results are bit for bit those of the graph-op versions in
// models.layers (relu(x) - slope * relu(-x), and the same integer hash), so a run may move
// between the two; batch norm agrees with MindSpore's own kernel to float rounding.

#include <omp.h>

#include <cmath>
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
  // max + slope * min: +0 (not -0) for negative x at slope 0, as a ReLU gives
  for (int64_t i = 0; i < n; i++) y[i] = std::fmax(x[i], 0.0f) + slope * std::fmin(x[i], 0.0f);
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

// Batch norm over N·H·W per channel, channels in parallel: each channel is N runs of H·W
// floats, summed in float within a run (vectorised) and in double across runs.
int BatchNormTraining(int, void **params, int *, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]), *mean = static_cast<float *>(params[5]);
  float *var = static_cast<float *>(params[6]);
  const int64_t n = shapes[0][0], c = shapes[0][1], hw = shapes[0][2] * shapes[0][3];
  const double m = static_cast<double>(n * hw);
#pragma omp parallel for schedule(dynamic)
  for (int64_t k = 0; k < c; k++) {
    double sum = 0, squares = 0;
    for (int64_t b = 0; b < n; b++) {
      const float *p = x + (b * c + k) * hw;
      float s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
      for (int64_t i = 0; i < hw; i++) s += p[i], q += p[i] * p[i];
      sum += s, squares += q;
    }
    const double mu = sum / m, v = squares / m - mu * mu > 0 ? squares / m - mu * mu : 0.0;
    mean[k] = static_cast<float>(mu), var[k] = static_cast<float>(v);
    const float a = static_cast<float>(gamma[k] / std::sqrt(v + eps));
    const float shift = static_cast<float>(beta[k] - mu * a);
    for (int64_t b = 0; b < n; b++) {
      const float *p = x + (b * c + k) * hw;
      float *q = y + (b * c + k) * hw;
#pragma omp simd
      for (int64_t i = 0; i < hw; i++) q[i] = p[i] * a + shift;
    }
  }
  return 0;
}

int BatchNormTrainingGrad(int, void **params, int *, int64_t **shapes, const char **, void *, void *) {
  const float *dy = static_cast<const float *>(params[0]), *x = static_cast<const float *>(params[1]);
  const float *gamma = static_cast<const float *>(params[2]), *mean = static_cast<const float *>(params[3]);
  const float *var = static_cast<const float *>(params[4]);
  const float eps = *static_cast<const float *>(params[5]);
  float *dx = static_cast<float *>(params[6]), *dgamma = static_cast<float *>(params[7]);
  float *dbeta = static_cast<float *>(params[8]);
  const int64_t n = shapes[0][0], c = shapes[0][1], hw = shapes[0][2] * shapes[0][3];
  const double m = static_cast<double>(n * hw);
#pragma omp parallel for schedule(dynamic)
  for (int64_t k = 0; k < c; k++) {
    const float mu = mean[k];
    double sum_dy = 0, sum_dy_xmu = 0;
    for (int64_t b = 0; b < n; b++) {
      const float *g = dy + (b * c + k) * hw, *p = x + (b * c + k) * hw;
      float s = 0, t = 0;
#pragma omp simd reduction(+ : s, t)
      for (int64_t i = 0; i < hw; i++) s += g[i], t += g[i] * (p[i] - mu);
      sum_dy += s, sum_dy_xmu += t;
    }
    const double inv = 1.0 / std::sqrt(static_cast<double>(var[k]) + eps);
    dbeta[k] = static_cast<float>(sum_dy);
    dgamma[k] = static_cast<float>(sum_dy_xmu * inv);
    // dx = gamma * inv * (dy - mean(dy) - (x - mu) * inv^2 * mean(dy * (x - mu)))
    const float a = static_cast<float>(gamma[k] * inv);
    const float b0 = static_cast<float>(sum_dy / m);
    const float b1 = static_cast<float>(inv * inv * sum_dy_xmu / m);
    for (int64_t b = 0; b < n; b++) {
      const float *g = dy + (b * c + k) * hw, *p = x + (b * c + k) * hw;
      float *q = dx + (b * c + k) * hw;
#pragma omp simd
      for (int64_t i = 0; i < hw; i++) q[i] = a * (g[i] - b0 - (p[i] - mu) * b1);
    }
  }
  return 0;
}

}  // extern "C"
