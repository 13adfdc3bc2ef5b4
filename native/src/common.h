// Shared helpers for the libtorch binding: one wrapped tensor class, argument converters, and a guard that turns
// every C++ exception (libtorch's c10::Error included) into a JS Error instead of aborting the process.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <optional>
#include <string>
#include <vector>

namespace mumu {

// A JS tensor handle is a napi External holding this, type-tagged so no other external passes for a tensor.
// Externals are much cheaper to create than class instances (no JS constructor call), which matters for small ops.
struct TensorHolder {
  at::Tensor tensor;
  int64_t accounted = 0;  // bytes reported to V8 so the GC feels native memory pressure
  void release(node_api_basic_env env, bool inGc = false);
};

// Wraps a result tensor as a new JS handle.
Napi::Value wrap(Napi::Env env, at::Tensor t);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts);

at::Tensor& T(const Napi::Value& v);                   // a live tensor or a TypeError
c10::optional<at::Tensor> optT(const Napi::Value& v);  // null/undefined -> nullopt
at::Tensor TorScalar(const Napi::Value& v);            // tensor, or a number/bool as a wrapped scalar
std::vector<at::Tensor> tensorList(const Napi::Value& v);
std::vector<int64_t> ints(const Napi::Value& v);
c10::optional<std::vector<int64_t>> optInts(const Napi::Value& v);
at::Scalar scalar(const Napi::Value& v);
int64_t i64(const Napi::Value& v);
double f64(const Napi::Value& v);
bool flag(const Napi::Value& v);
std::string str(const Napi::Value& v);
at::ScalarType dtypeArg(const Napi::Value& v, at::ScalarType fallback);
c10::Device deviceArg(const Napi::Value& v);
c10::optional<at::Generator> generatorArg(const Napi::Value& v);

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);

template <Fn F>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

#define EXPORT(name, fn) exports.Set(name, Napi::Function::New(env, guarded<fn>, name))

void installCachingAllocator();
void InitTensor(Napi::Env env, Napi::Object exports);
void InitOps(Napi::Env env, Napi::Object exports);
void InitNN(Napi::Env env, Napi::Object exports);
void InitOptim(Napi::Env env, Napi::Object exports);
void InitDistributed(Napi::Env env, Napi::Object exports);

}  // namespace mumu
