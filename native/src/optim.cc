// Optimiser steps in C++: one N-API call updates a whole parameter group (fewer crossings than composing ops in JS).
#include "common.h"
#include <c10/core/GradMode.h>

namespace mumu {

// adamwStep(params[], expAvg[], expAvgSq[], step, lr, beta1, beta2, eps, weightDecay)
// Decoupled weight decay (Loshchilov & Hutter), the same update as torch.optim.AdamW (non-fused, non-amsgrad).
static Napi::Value AdamwStep(const Napi::CallbackInfo& i) {
  auto params = tensorList(i[0]);
  auto m = tensorList(i[1]);
  auto v = tensorList(i[2]);
  double step = f64(i[3]), lr = f64(i[4]), b1 = f64(i[5]), b2 = f64(i[6]), eps = f64(i[7]), wd = f64(i[8]);
  if (params.size() != m.size() || params.size() != v.size())
    throw Napi::Error::New(i.Env(), "adamwStep: state lists differ in length");
  c10::NoGradGuard ng;  // c10's name: ATen's alias is not included by ATen.h in PyTorch 2.x
  double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  double stepSize = lr / bc1, bc2Sqrt = std::sqrt(bc2);
  for (size_t k = 0; k < params.size(); k++) {
    at::Tensor& p = params[k];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (wd != 0) p.mul_(1 - lr * wd);
    m[k].lerp_(g, 1 - b1);
    v[k].mul_(b2).addcmul_(g, g, 1 - b2);
    at::Tensor denom = (v[k].sqrt() / bc2Sqrt).add_(eps);
    p.addcdiv_(m[k], denom, -stepSize);
  }
  return i.Env().Undefined();
}

// clipGradNorm(params[], maxNorm, normType) -> total norm before clipping (as torch.nn.utils.clip_grad_norm_).
static Napi::Value ClipGradNorm(const Napi::CallbackInfo& i) {
  auto params = tensorList(i[0]);
  double maxNorm = f64(i[1]);
  double p = i[2].IsNumber() ? f64(i[2]) : 2.0;
  c10::NoGradGuard ng;  // c10's name: ATen's alias is not included by ATen.h in PyTorch 2.x
  std::vector<at::Tensor> norms;
  for (auto& t : params)
    if (t.grad().defined()) norms.push_back(p == INFINITY ? t.grad().abs().max() : t.grad().norm(p));
  if (norms.empty()) return Napi::Number::New(i.Env(), 0);
  at::Tensor total = p == INFINITY ? at::stack(norms).max() : at::stack(norms).norm(p);
  double totalNorm = total.item<double>();
  double coef = maxNorm / (totalNorm + 1e-6);
  if (coef < 1)
    for (auto& t : params)
      if (t.grad().defined()) t.mutable_grad().mul_(coef);
  return Napi::Number::New(i.Env(), totalNorm);
}

// zeroGrad(params[]): drops the .grad tensors (set_to_none, PyTorch's default since 2.0).
static Napi::Value ZeroGrad(const Napi::CallbackInfo& i) {
  for (auto& t : tensorList(i[0])) t.mutable_grad() = at::Tensor();
  return i.Env().Undefined();
}

void InitOptim(Napi::Env env, Napi::Object exports) {
  EXPORT("adamwStep", AdamwStep);
  EXPORT("clipGradNorm", ClipGradNorm);
  EXPORT("zeroGrad", ZeroGrad);
}

}  // namespace mumu
