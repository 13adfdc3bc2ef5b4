#include "common.h"
#include <torch/csrc/api/include/torch/version.h>

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  mumu::InitTensor(env, exports);
  mumu::InitOps(env, exports);
  mumu::InitNN(env, exports);
  mumu::InitOptim(env, exports);
  mumu::InitDistributed(env, exports);
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  exports.Set("withCuda", Napi::Boolean::New(env, MUMU_WITH_CUDA));
  return exports;
}

NODE_API_MODULE(mumu_torch, InitAll)
