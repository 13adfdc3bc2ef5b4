// Neural-network ops: convolutions, norms, embedding, softmax, dropout, resampling, attention and losses.
#include "common.h"
#include <torch/csrc/api/include/torch/version.h>

namespace mumu {

static Napi::Value Conv2d(const Napi::CallbackInfo& i) {  // (x, w, b|null, stride, padding, dilation, groups)
  return wrap(i.Env(), at::conv2d(T(i[0]), T(i[1]), optT(i[2]), ints(i[3]), ints(i[4]), ints(i[5]), i64(i[6])));
}
static Napi::Value ConvTranspose2d(
    const Napi::CallbackInfo& i) {  // (x, w, b, stride, padding, outputPadding, groups, dilation)
  return wrap(i.Env(), at::conv_transpose2d(T(i[0]), T(i[1]), optT(i[2]), ints(i[3]), ints(i[4]), ints(i[5]), i64(i[6]),
                                            ints(i[7])));
}
static Napi::Value GroupNorm(const Napi::CallbackInfo& i) {  // (x, groups, w|null, b|null, eps)
  return wrap(i.Env(), at::group_norm(T(i[0]), i64(i[1]), optT(i[2]), optT(i[3]), f64(i[4])));
}
static Napi::Value LayerNorm(const Napi::CallbackInfo& i) {  // (x, normalizedShape, w|null, b|null, eps)
  return wrap(i.Env(), at::layer_norm(T(i[0]), ints(i[1]), optT(i[2]), optT(i[3]), f64(i[4])));
}
static Napi::Value Embedding(const Napi::CallbackInfo& i) {  // (weight, indices)
  return wrap(i.Env(), at::embedding(T(i[0]), T(i[1])));
}
static Napi::Value Softmax(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::softmax(T(i[0]), i64(i[1]))); }
static Napi::Value LogSoftmax(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::log_softmax(T(i[0]), i64(i[1])));
}

// dropout(x, p, train, gen|null): with a generator the mask is drawn from it, so training runs are reproducible.
static Napi::Value Dropout(const Napi::CallbackInfo& i) {
  const at::Tensor& x = T(i[0]);
  double p = f64(i[1]);
  if (!flag(i[2]) || p == 0) return wrap(i.Env(), x);
  auto gen = generatorArg(i[3]);
  if (!gen) return wrap(i.Env(), at::dropout(x, p, true));
  at::Tensor keep =
      at::empty(x.sizes(), at::TensorOptions().dtype(x.scalar_type())).bernoulli_(1 - p, gen).to(x.device());
  return wrap(i.Env(), x * keep / (1 - p));
}

static Napi::Value Interpolate(const Napi::CallbackInfo& i) {  // (x, [h, w], mode, alignCorners)
  const at::Tensor& x = T(i[0]);
  auto size = ints(i[1]);
  std::string mode = str(i[2]);
  if (mode == "nearest") return wrap(i.Env(), at::upsample_nearest2d(x, size));
  if (mode == "bilinear") return wrap(i.Env(), at::upsample_bilinear2d(x, size, flag(i[3])));
  if (mode == "bicubic") return wrap(i.Env(), at::upsample_bicubic2d(x, size, flag(i[3])));
  throw Napi::Error::New(i.Env(), "interpolate: unknown mode '" + mode + "' (nearest, bilinear, bicubic)");
}
static Napi::Value AvgPool2d(const Napi::CallbackInfo& i) {  // (x, kernel, stride, padding)
  return wrap(i.Env(), at::avg_pool2d(T(i[0]), ints(i[1]), ints(i[2]), ints(i[3])));
}
static Napi::Value MaxPool2d(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::max_pool2d(T(i[0]), ints(i[1]), ints(i[2]), ints(i[3])));
}
static Napi::Value AdaptiveAvgPool2d(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::adaptive_avg_pool2d(T(i[0]), ints(i[1])));
}

// attention(q, k, v, mask|null, isCausal, scale|null, dropoutP, gen|null) on (B, heads, T, d).
// Boolean masks follow PyTorch 2: true = may attend. Float masks are added to the scores.
// libtorch >= 2.1 has the fused kernel (flash / memory-efficient); older builds get the same math composed here.
static Napi::Value Attention(const Napi::CallbackInfo& i) {
  const at::Tensor& q = T(i[0]);
  const at::Tensor& k = T(i[1]);
  const at::Tensor& v = T(i[2]);
  auto mask = optT(i[3]);
  bool causal = flag(i[4]);
  double scale = i[5].IsNumber() ? f64(i[5]) : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  double p = i[6].IsNumber() ? f64(i[6]) : 0.0;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  if (!generatorArg(i[7])) return wrap(i.Env(), at::scaled_dot_product_attention(q, k, v, mask, p, causal, scale));
#endif
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale;  // (B, heads, Tq, Tk)
  if (causal) {
    auto allowed = at::ones({q.size(-2), k.size(-2)}, q.options().dtype(at::kBool)).tril();
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask) {
    if (mask->scalar_type() == at::kBool)
      scores = scores.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity());
    else
      scores = scores + *mask;
  }
  at::Tensor w = at::softmax(scores, -1);
  if (p > 0) {
    auto gen = generatorArg(i[7]);
    at::Tensor keep =
        at::empty(w.sizes(), at::TensorOptions().dtype(w.scalar_type())).bernoulli_(1 - p, gen).to(w.device());
    w = w * keep / (1 - p);
  }
  return wrap(i.Env(), at::matmul(w, v));
}

static int64_t reduction(const Napi::Value& v) {
  std::string r = v.IsString() ? str(v) : "mean";
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  throw Napi::Error::New(v.Env(), "unknown reduction '" + r + "' (mean, sum, none)");
}
static Napi::Value MseLoss(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::mse_loss(T(i[0]), T(i[1]), reduction(i[2])));
}
static Napi::Value L1Loss(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::l1_loss(T(i[0]), T(i[1]), reduction(i[2])));
}
static Napi::Value CrossEntropy(
    const Napi::CallbackInfo& i) {  // (logits, target, reduction, ignoreIndex, labelSmoothing)
  int64_t ignore = i[3].IsNumber() ? i64(i[3]) : -100;
  double smoothing = i[4].IsNumber() ? f64(i[4]) : 0.0;
  return wrap(i.Env(), at::cross_entropy_loss(T(i[0]), T(i[1]), {}, reduction(i[2]), ignore, smoothing));
}
static Napi::Value BceWithLogits(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::binary_cross_entropy_with_logits(T(i[0]), T(i[1]), {}, {}, reduction(i[2])));
}

void InitNN(Napi::Env env, Napi::Object exports) {
  EXPORT("conv2d", Conv2d);
  EXPORT("convTranspose2d", ConvTranspose2d);
  EXPORT("groupNorm", GroupNorm);
  EXPORT("layerNorm", LayerNorm);
  EXPORT("embedding", Embedding);
  EXPORT("softmax", Softmax);
  EXPORT("logSoftmax", LogSoftmax);
  EXPORT("dropout", Dropout);
  EXPORT("interpolate", Interpolate);
  EXPORT("avgPool2d", AvgPool2d);
  EXPORT("maxPool2d", MaxPool2d);
  EXPORT("adaptiveAvgPool2d", AdaptiveAvgPool2d);
  EXPORT("attention", Attention);
  EXPORT("mseLoss", MseLoss);
  EXPORT("l1Loss", L1Loss);
  EXPORT("crossEntropy", CrossEntropy);
  EXPORT("bceWithLogits", BceWithLogits);
}

}  // namespace mumu
