// 2-D convolutions for MindSpore's CPU backend, through the oneDNN library MindSpore ships
// (mindspore/lib/libdnnl.so.3), as MindSpore "aot" custom operators.
//
// Why: MindSpore 2.10 calls oneDNN's convolutions on plain NCHW tensors, where oneDNN has only
// its im2col + GEMM kernel (AVX2) or a reference kernel (AVX-512, 40-80x slower). Asked with
// layouts left to oneDNN ("any"), the same library picks its blocked direct / brgemm kernels,
// PyTorch's speed. Each call reorders its NCHW tensors to and from those layouts.
//
// Three entry points, each MindSpore's aot signature, NCHW float32, with a geometry input
// int32 [stride_h, stride_w, pad_top, pad_left] (bottom/right padding follows from shapes):
//   ConvForward(x [N,C,H,W], w [O,C,kh,kw], g)          -> y [N,O,OH,OW]
//   ConvBackwardData(dy [N,O,OH,OW], w [O,C,kh,kw], g)  -> dx [N,C,H,W]  (= transposed conv)
//   ConvBackwardWeights(x [N,C,H,W], dy [N,O,OH,OW], g) -> dw [O,C,kh,kw]
// Built and loaded by mindgan/cpu/native.py; declarations are the subset of oneDNN 3's C API
// (stable ABI across 3.x) this file uses, so no oneDNN headers are needed to build it.

#include <omp.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

extern "C" {
typedef int dnnl_status_t;  // 0: success
typedef struct dnnl_engine *dnnl_engine_t;
typedef struct dnnl_stream *dnnl_stream_t;
typedef struct dnnl_memory_desc *dnnl_memory_desc_t;
typedef const struct dnnl_memory_desc *const_dnnl_memory_desc_t;
typedef struct dnnl_memory *dnnl_memory_t;
typedef struct dnnl_primitive_desc *dnnl_primitive_desc_t;
typedef struct dnnl_primitive *dnnl_primitive_t;
typedef int64_t dnnl_dims_t[12];
typedef struct {
  int arg;
  dnnl_memory_t memory;
} dnnl_exec_arg_t;
typedef struct {
  int major, minor, patch;
  const char *hash;
  unsigned cpu_runtime, gpu_runtime;
} dnnl_version_t;

const dnnl_version_t *dnnl_version(void);
dnnl_status_t dnnl_engine_create(dnnl_engine_t *, int kind, size_t index);
dnnl_status_t dnnl_threadpool_interop_stream_create(dnnl_stream_t *, dnnl_engine_t, void *threadpool);
dnnl_status_t dnnl_stream_wait(dnnl_stream_t);
dnnl_status_t dnnl_memory_desc_create_with_tag(dnnl_memory_desc_t *, int ndims, const dnnl_dims_t,
                                               int data_type, int tag);
dnnl_status_t dnnl_memory_desc_destroy(dnnl_memory_desc_t);
int dnnl_memory_desc_equal(const_dnnl_memory_desc_t, const_dnnl_memory_desc_t);
size_t dnnl_memory_desc_get_size(const_dnnl_memory_desc_t);
dnnl_status_t dnnl_memory_create(dnnl_memory_t *, const_dnnl_memory_desc_t, dnnl_engine_t, void *handle);
dnnl_status_t dnnl_memory_set_data_handle(dnnl_memory_t, void *handle);
dnnl_status_t dnnl_convolution_forward_primitive_desc_create(
    dnnl_primitive_desc_t *, dnnl_engine_t, int prop_kind, int alg_kind, const_dnnl_memory_desc_t src,
    const_dnnl_memory_desc_t weights, const_dnnl_memory_desc_t bias, const_dnnl_memory_desc_t dst,
    const dnnl_dims_t strides, const dnnl_dims_t dilates, const dnnl_dims_t padding_l,
    const dnnl_dims_t padding_r, const void *attr);
dnnl_status_t dnnl_convolution_backward_data_primitive_desc_create(
    dnnl_primitive_desc_t *, dnnl_engine_t, int alg_kind, const_dnnl_memory_desc_t diff_src,
    const_dnnl_memory_desc_t weights, const_dnnl_memory_desc_t diff_dst, const dnnl_dims_t strides,
    const dnnl_dims_t dilates, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r,
    const dnnl_primitive_desc_t hint_fwd_pd, const void *attr);
dnnl_status_t dnnl_convolution_backward_weights_primitive_desc_create(
    dnnl_primitive_desc_t *, dnnl_engine_t, int alg_kind, const_dnnl_memory_desc_t src,
    const_dnnl_memory_desc_t diff_weights, const_dnnl_memory_desc_t diff_bias,
    const_dnnl_memory_desc_t diff_dst, const dnnl_dims_t strides, const dnnl_dims_t dilates,
    const dnnl_dims_t padding_l, const dnnl_dims_t padding_r, const dnnl_primitive_desc_t hint_fwd_pd,
    const void *attr);
dnnl_status_t dnnl_reorder_primitive_desc_create(dnnl_primitive_desc_t *, const_dnnl_memory_desc_t src,
                                                 dnnl_engine_t, const_dnnl_memory_desc_t dst,
                                                 dnnl_engine_t, const void *attr);
const_dnnl_memory_desc_t dnnl_primitive_desc_query_md(const dnnl_primitive_desc_t, int what, int index);
dnnl_status_t dnnl_primitive_desc_destroy(dnnl_primitive_desc_t);
dnnl_status_t dnnl_primitive_create(dnnl_primitive_t *, const dnnl_primitive_desc_t);
dnnl_status_t dnnl_primitive_execute(const dnnl_primitive_t, dnnl_stream_t, int nargs,
                                     const dnnl_exec_arg_t *args);
}

// oneDNN 3.x C API constants (dnnl_types.h / dnnl_common_types.h).
enum : int {
  kCpuEngine = 1, kF32 = 3, kFormatAny = 1, kFormatAbcd = 5, kForwardTraining = 64,
  kConvolutionDirect = 1, kQueryExecArgMd = 255,
  kArgSrc = 1, kArgDst = 17, kArgWeights = 33, kArgDiffSrc = 129, kArgDiffDst = 145,
  kArgDiffWeights = 161,
};
constexpr unsigned kRuntimeThreadpool = 8;  // DNNL_RUNTIME_THREADPOOL: MindSpore's build

// The threadpool interface of a DNNL_RUNTIME_THREADPOOL build (dnnl_threadpool_iface.hpp):
// oneDNN calls these virtual functions in this order; without a pool it runs single-threaded.
namespace dnnl {
namespace threadpool_interop {
struct threadpool_iface {
  virtual int get_num_threads() const = 0;
  virtual bool get_in_parallel() const = 0;
  virtual void parallel_for(int n, const std::function<void(int, int)> &fn) = 0;
  virtual uint64_t get_flags() const = 0;
  virtual ~threadpool_iface() = default;
};
}  // namespace threadpool_interop
}  // namespace dnnl

namespace {

struct OpenMPPool : dnnl::threadpool_interop::threadpool_iface {
  int threads = omp_get_max_threads();
  int get_num_threads() const override { return threads; }
  bool get_in_parallel() const override { return omp_in_parallel(); }
  // Chunks go to whichever thread is free (not i -> thread i): when another thread of the
  // process (MindSpore's waiting host thread) takes a core for a while, the other threads
  // finish its chunks instead of waiting for it.
  void parallel_for(int n, const std::function<void(int, int)> &fn) override {
    std::atomic<int> next{0};
#pragma omp parallel num_threads(threads < n ? threads : n)
    for (int i; (i = next++) < n;) fn(i, n);
  }
  uint64_t get_flags() const override { return 0; }  // synchronous
};

struct Failure {
  std::string what;
};

void check(dnnl_status_t status, const char *call) {
  if (status != 0) throw Failure{std::string(call) + " failed with oneDNN status " + std::to_string(status)};
}

struct Context {
  dnnl_engine_t engine = nullptr;
  dnnl_stream_t stream = nullptr;
  OpenMPPool pool;
  Context() {
    check(dnnl_engine_create(&engine, kCpuEngine, 0), "dnnl_engine_create");
    check(dnnl_threadpool_interop_stream_create(&stream, engine, &pool), "stream_create");
  }
};

Context &context() {
  static Context c;
  return c;
}

struct Geometry {
  dnnl_dims_t x, w, y, strides, dilates, pad_l, pad_r;
};

dnnl_memory_desc_t desc(const dnnl_dims_t dims, int tag) {
  dnnl_memory_desc_t md;
  check(dnnl_memory_desc_create_with_tag(&md, 4, dims, kF32, tag), "memory_desc_create");
  return md;
}

// The primitive of `pd`, which it then frees (a primitive keeps what it needs).
dnnl_primitive_t primitive(dnnl_primitive_desc_t pd) {
  dnnl_primitive_t p;
  check(dnnl_primitive_create(&p, pd), "primitive_create");
  dnnl_primitive_desc_destroy(pd);
  return p;
}

// One argument of a convolution primitive: the caller's NCHW tensor, and where the primitive
// wants another layout, a buffer in it and the reorder between them.
struct Argument {
  int id;
  bool output;
  dnnl_memory_t user = nullptr, blocked = nullptr;
  dnnl_primitive_t reorder = nullptr;

  Argument(int id, bool output, dnnl_primitive_desc_t pd, const dnnl_dims_t dims) : id(id), output(output) {
    Context &c = context();
    dnnl_memory_desc_t plain = desc(dims, kFormatAbcd);
    const_dnnl_memory_desc_t wanted = dnnl_primitive_desc_query_md(pd, kQueryExecArgMd, id);
    check(dnnl_memory_create(&user, plain, c.engine, nullptr), "memory_create");
    if (!dnnl_memory_desc_equal(plain, wanted)) {
      check(dnnl_memory_create(&blocked, wanted, c.engine, (void *)(size_t)-1), "memory_create");
      dnnl_primitive_desc_t rpd;
      if (output)
        check(dnnl_reorder_primitive_desc_create(&rpd, wanted, c.engine, plain, c.engine, nullptr), "reorder");
      else
        check(dnnl_reorder_primitive_desc_create(&rpd, plain, c.engine, wanted, c.engine, nullptr), "reorder");
      reorder = primitive(rpd);
    }
    dnnl_memory_desc_destroy(plain);  // memories keep their own copies
  }

  dnnl_memory_t bind(void *data) {
    check(dnnl_memory_set_data_handle(user, data), "memory_set_data_handle");
    return blocked ? blocked : user;
  }

  void convert(dnnl_stream_t stream) {
    if (!reorder) return;
    dnnl_exec_arg_t args[2] = {{kArgSrc, output ? blocked : user}, {kArgDst, output ? user : blocked}};
    check(dnnl_primitive_execute(reorder, stream, 2, args), "reorder execute");
  }
};

struct Plan {
  dnnl_primitive_t conv = nullptr;
  std::vector<Argument> args;  // two inputs, then the output
};

enum Kind { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

std::mutex plans_mutex;  // MindSpore may launch independent kernels from several threads
std::map<std::string, std::unique_ptr<Plan>> plans;

std::unique_ptr<Plan> make_plan(Kind kind, const Geometry &g) {
  Context &c = context();
  // An input gradient with few channels (an image's 1 or 3) in oneDNN's blocked layout pads
  // them to 8 or 16 and runs 3-6x slower than its gemm kernel on plain NCHW: 12.7 vs 2.0 ms for
  // [256, 1, 28, 28] <- [256, 64, 14, 14], 22.9 vs 7.3 ms for [128, 3, 64, 64], AVX-512 or AVX2.
  const bool narrow = kind == kBackwardData && g.x[1] < 8;
  dnnl_memory_desc_t x = desc(g.x, narrow ? kFormatAbcd : kFormatAny);
  dnnl_memory_desc_t w = desc(g.w, kFormatAny), y = desc(g.y, kFormatAny);
  dnnl_primitive_desc_t hint, pd;
  check(dnnl_convolution_forward_primitive_desc_create(&hint, c.engine, kForwardTraining, kConvolutionDirect,
                                                       x, w, nullptr, y, g.strides, g.dilates, g.pad_l,
                                                       g.pad_r, nullptr),
        "convolution_forward_primitive_desc_create");
  auto plan = std::make_unique<Plan>();
  if (kind == kForward) {
    pd = hint;
    plan->args = {Argument(kArgSrc, false, pd, g.x), Argument(kArgWeights, false, pd, g.w),
                  Argument(kArgDst, true, pd, g.y)};
  } else if (kind == kBackwardData) {
    check(dnnl_convolution_backward_data_primitive_desc_create(&pd, c.engine, kConvolutionDirect, x, w, y,
                                                               g.strides, g.dilates, g.pad_l, g.pad_r, hint,
                                                               nullptr),
          "convolution_backward_data_primitive_desc_create");
    plan->args = {Argument(kArgDiffDst, false, pd, g.y), Argument(kArgWeights, false, pd, g.w),
                  Argument(kArgDiffSrc, true, pd, g.x)};
  } else {
    check(dnnl_convolution_backward_weights_primitive_desc_create(&pd, c.engine, kConvolutionDirect, x, w,
                                                                  nullptr, y, g.strides, g.dilates, g.pad_l,
                                                                  g.pad_r, hint, nullptr),
          "convolution_backward_weights_primitive_desc_create");
    plan->args = {Argument(kArgSrc, false, pd, g.x), Argument(kArgDiffDst, false, pd, g.y),
                  Argument(kArgDiffWeights, true, pd, g.w)};
  }
  plan->conv = primitive(pd);
  if (kind != kForward) dnnl_primitive_desc_destroy(hint);
  for (dnnl_memory_desc_t md : {x, w, y}) dnnl_memory_desc_destroy(md);
  return plan;
}

std::string key(Kind kind, const Geometry &g) {
  std::string k = std::to_string(kind);
  for (const int64_t *v : {g.x, g.w, g.y, g.strides, g.pad_l, g.pad_r})
    for (int i = 0; i < 4; i++) k += "," + std::to_string(v[i]);
  return k;
}

// params: the two inputs, the geometry, the output.
int run(Kind kind, void **params, const Geometry &g) {
  std::lock_guard<std::mutex> lock(plans_mutex);
  try {
    std::unique_ptr<Plan> &plan = plans[key(kind, g)];
    if (!plan) plan = make_plan(kind, g);
    Context &c = context();
    void *data[3] = {params[0], params[1], params[3]};
    dnnl_exec_arg_t args[3];
    for (int i = 0; i < 3; i++) {
      args[i] = {plan->args[i].id, plan->args[i].bind(data[i])};
      if (i < 2) plan->args[i].convert(c.stream);
    }
    check(dnnl_primitive_execute(plan->conv, c.stream, 3, args), "convolution execute");
    plan->args[2].convert(c.stream);
    check(dnnl_stream_wait(c.stream), "stream_wait");
  } catch (const Failure &f) {
    std::fprintf(stderr, "mindgan onednn_conv: %s\n", f.what.c_str());
    return 1;
  }
  return 0;
}

// x [N,C,H,W], w [O,C,kh,kw], y [N,O,OH,OW]; q: int32 [stride_h, stride_w, pad_top, pad_left].
Geometry geometry(const int64_t *x, const int64_t *w, const int64_t *y, const int32_t *q) {
  Geometry g{};
  for (int i = 0; i < 4; i++) g.x[i] = x[i], g.w[i] = w[i], g.y[i] = y[i];
  for (int k = 0; k < 2; k++) {
    g.strides[k] = q[k];
    g.pad_l[k] = q[2 + k];
    g.pad_r[k] = (y[2 + k] - 1) * q[k] + w[2 + k] - x[2 + k] - q[2 + k];
  }
  return g;
}

}  // namespace

extern "C" {

int ConvForward(int, void **params, int *, int64_t **shapes, const char **, void *, void *) {
  return run(kForward, params, geometry(shapes[0], shapes[1], shapes[3], static_cast<int32_t *>(params[2])));
}

int ConvBackwardData(int, void **params, int *, int64_t **shapes, const char **, void *, void *) {
  return run(kBackwardData, params,
             geometry(shapes[3], shapes[1], shapes[0], static_cast<int32_t *>(params[2])));
}

int ConvBackwardWeights(int, void **params, int *, int64_t **shapes, const char **, void *, void *) {
  return run(kBackwardWeights, params,
             geometry(shapes[0], shapes[3], shapes[1], static_cast<int32_t *>(params[2])));
}

// For mindgan/cpu/native.py: 0 if the loaded oneDNN is one this file was written for.
int mindgan_conv_check(void) {
  const dnnl_version_t *v = dnnl_version();
  return (v->major == 3 && v->cpu_runtime == kRuntimeThreadpool) ? 0 : 1;
}

void mindgan_conv_set_threads(int threads) {
  if (threads > 0) context().pool.threads = threads;
}

}  // extern "C"
