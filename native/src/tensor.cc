// The wrapped tensor, argument conversion, factories, typed-array conversion, autograd and random generators.
#include "common.h"
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/ScalarOps.h>
#include <c10/core/GradMode.h>
#if MUMU_WITH_CUDA
#include <c10/core/impl/DeviceGuardImplInterface.h>
#endif
#include <cstring>

namespace mumu {

static int64_t liveBytes = 0;  // native bytes held by live JS tensors (for GC pressure, src/torch/scope.ts)
static const napi_type_tag kTensorTag = {0x6d756d752d746f72ULL, 0x63682d74656e736fULL};

static int64_t ownedBytes(const at::Tensor& t) {
  if (!t.defined() || t.is_view() || !t.device().is_cpu()) return 0;
  return static_cast<int64_t>(t.nbytes());
}

// V8 hears of native memory in batches of at least 1 MiB: one call per tiny tensor cost more than the op itself.
// Never from inside a GC (finalizers): reporting can start a GC, and V8 aborts on that re-entry.
static int64_t unreported = 0;
static void account(node_api_basic_env env, int64_t bytes, bool inGc = false) {
  liveBytes += bytes;
  unreported += bytes;
  if (!inGc && (unreported > (1 << 20) || unreported < -(1 << 20))) {
    int64_t report = unreported, ignored;
    unreported = 0;  // before the call: a GC it starts may run finalizers that account more
    napi_adjust_external_memory(env, report, &ignored);
  }
}

void TensorHolder::release(node_api_basic_env env, bool inGc) {
  if (accounted) account(env, -accounted, inGc);
  accounted = 0;
  tensor = at::Tensor();
}

// A basic finalizer: with NAPI_EXPERIMENTAL, Node runs it during GC itself, so memory comes back even inside a
// long synchronous loop (deferred finalizers never ran there: 900 MB in 300 steps, measured).
static void finalizeHolder(node_api_basic_env env, void* data, void*) {
  auto* h = static_cast<TensorHolder*>(data);
  h->release(env, /*inGc=*/true);
  delete h;
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  auto* h = new TensorHolder{std::move(t), 0};
  h->accounted = ownedBytes(h->tensor);
  if (h->accounted) account(env, h->accounted);
  napi_value v;
  NAPI_THROW_IF_FAILED(env, napi_create_external(env, h, finalizeHolder, nullptr, &v), Napi::Value());
  NAPI_THROW_IF_FAILED(env, napi_type_tag_object(env, v, &kTensorTag), Napi::Value());
  return Napi::Value(env, v);
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array out = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) out.Set(i, wrap(env, ts[i]));
  return out;
}

static TensorHolder* holder(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  bool tagged = false;
  napi_check_object_type_tag(v.Env(), v, &kTensorTag, &tagged);
  return tagged ? v.As<Napi::External<TensorHolder>>().Data() : nullptr;
}

at::Tensor& T(const Napi::Value& v) {
  TensorHolder* h = holder(v);
  if (!h) throw Napi::TypeError::New(v.Env(), "expected a Tensor");
  if (!h->tensor.defined()) throw Napi::Error::New(v.Env(), "tensor was disposed");
  return h->tensor;
}

c10::optional<at::Tensor> optT(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  return T(v);
}

at::Scalar scalar(const Napi::Value& v) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), "expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  // JS has one number type; integral values act like Python ints so int tensors stay int (2 * intTensor).
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9007199254740992.0)
    return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

at::Tensor TorScalar(const Napi::Value& v) {
  if (v.IsNumber() || v.IsBoolean()) return at::native::wrapped_scalar_tensor(scalar(v));
  return T(v);
}

std::vector<at::Tensor> tensorList(const Napi::Value& v) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), "expected an array of Tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(T(a.Get(i)));
  return out;
}

int64_t i64(const Napi::Value& v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), "expected an integer");
  return v.As<Napi::Number>().Int64Value();
}
double f64(const Napi::Value& v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), "expected a number");
  return v.As<Napi::Number>().DoubleValue();
}
bool flag(const Napi::Value& v) { return v.ToBoolean().Value(); }
std::string str(const Napi::Value& v) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), "expected a string");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> ints(const Napi::Value& v) {
  if (v.IsNumber()) return {i64(v)};
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), "expected an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out[i] = i64(a.Get(i));
  return out;
}
c10::optional<std::vector<int64_t>> optInts(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  return ints(v);
}

at::ScalarType dtypeArg(const Napi::Value& v, at::ScalarType fallback) {
  if (v.IsUndefined() || v.IsNull()) return fallback;
  return static_cast<at::ScalarType>(i64(v));  // codes are c10::ScalarType values, mirrored in src/torch/dtype.ts
}

c10::Device deviceArg(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return c10::Device(c10::kCPU);
  return c10::Device(str(v));
}

static at::TensorOptions opts(const Napi::Value& dtype, const Napi::Value& device) {
  return at::TensorOptions().dtype(dtypeArg(dtype, at::kFloat)).device(deviceArg(device));
}

// Generators always live on the CPU: a seed gives the same numbers on every device (then moved there).
class GeneratorWrap : public Napi::ObjectWrap<GeneratorWrap> {
 public:
  static Napi::FunctionReference* ctor;
  at::Generator gen;
  explicit GeneratorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorWrap>(info) {
    uint64_t seed = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    gen = at::detail::createCPUGenerator(seed);
  }
};
Napi::FunctionReference* GeneratorWrap::ctor = nullptr;

c10::optional<at::Generator> generatorArg(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(GeneratorWrap::ctor->Value()))
    throw Napi::TypeError::New(v.Env(), "expected a Generator");
  return GeneratorWrap::Unwrap(v.As<Napi::Object>())->gen;
}

static Napi::Value GeneratorGetState(const Napi::CallbackInfo& info) {
  auto g = *generatorArg(info[0]);
  return wrap(info.Env(), g.get_state());
}
static Napi::Value GeneratorSetState(const Napi::CallbackInfo& info) {
  auto g = *generatorArg(info[0]);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(T(info[1]));
  return info.Env().Undefined();
}

// ---- factories: (shape, dtype, device) ----
static Napi::Value Zeros(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::zeros(ints(i[0]), opts(i[1], i[2]))); }
static Napi::Value Ones(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::ones(ints(i[0]), opts(i[1], i[2]))); }
static Napi::Value Empty(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::empty(ints(i[0]), opts(i[1], i[2]))); }
static Napi::Value Full(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::full(ints(i[0]), scalar(i[1]), opts(i[2], i[3])));
}
static Napi::Value Arange(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::arange(scalar(i[0]), scalar(i[1]), scalar(i[2]), opts(i[3], i[4])));
}
static Napi::Value Linspace(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::linspace(scalar(i[0]), scalar(i[1]), i64(i[2]), opts(i[3], i[4])));
}
static Napi::Value Eye(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::eye(i64(i[0]), i64(i[1]), opts(i[2], i[3])));
}

// Random: (shape, generator, dtype, device); sampled on the CPU so results do not depend on the device.
static at::Tensor onDevice(at::Tensor t, const Napi::Value& device) {
  auto d = deviceArg(device);
  return d.is_cpu() ? t : t.to(d);
}
static Napi::Value Randn(const Napi::CallbackInfo& i) {
  auto o = at::TensorOptions().dtype(dtypeArg(i[2], at::kFloat));
  return wrap(i.Env(), onDevice(at::randn(ints(i[0]), generatorArg(i[1]), o), i[3]));
}
static Napi::Value Rand(const Napi::CallbackInfo& i) {
  auto o = at::TensorOptions().dtype(dtypeArg(i[2], at::kFloat));
  return wrap(i.Env(), onDevice(at::rand(ints(i[0]), generatorArg(i[1]), o), i[3]));
}
static Napi::Value Randint(const Napi::CallbackInfo& i) {  // (low, high, shape, gen, dtype, device)
  auto o = at::TensorOptions().dtype(dtypeArg(i[4], at::kLong));
  return wrap(i.Env(), onDevice(at::randint(i64(i[0]), i64(i[1]), ints(i[2]), generatorArg(i[3]), o), i[5]));
}
static Napi::Value Randperm(const Napi::CallbackInfo& i) {
  return wrap(i.Env(),
              onDevice(at::randperm(i64(i[0]), generatorArg(i[1]), at::TensorOptions().dtype(at::kLong)), i[2]));
}
static Napi::Value Multinomial(const Napi::CallbackInfo& i) {  // (probs, n, replacement, gen)
  auto p = T(i[0]);
  auto out = at::multinomial(p.cpu(), i64(i[1]), flag(i[2]), generatorArg(i[3]));
  return wrap(i.Env(), out.to(p.device()));
}
// In-place initialisers used by module init: (t, a, b, gen). Sampled on the CPU (device-independent streams),
// then copied into t without recording the copy for autograd.
template <typename Sample>
static Napi::Value fillFrom(const Napi::CallbackInfo& i, Sample sample) {
  auto& t = T(i[0]);
  at::Tensor r = at::empty(t.sizes(), at::TensorOptions().dtype(t.scalar_type()));
  sample(r, f64(i[1]), f64(i[2]), generatorArg(i[3]));
  at::NoGradGuard ng;
  t.copy_(r);
  return i[0];
}
static Napi::Value Normal_(const Napi::CallbackInfo& i) {
  return fillFrom(
      i, [](at::Tensor& r, double mean, double std, c10::optional<at::Generator> g) { r.normal_(mean, std, g); });
}
static Napi::Value Uniform_(const Napi::CallbackInfo& i) {
  return fillFrom(i,
                  [](at::Tensor& r, double lo, double hi, c10::optional<at::Generator> g) { r.uniform_(lo, hi, g); });
}

// ---- typed arrays ----
// fromBuffer(typedArray, shape, dtype): copies the bytes once into a new tensor.
static Napi::Value FromBuffer(const Napi::CallbackInfo& i) {
  Napi::Env env = i.Env();
  if (!i[0].IsTypedArray()) throw Napi::TypeError::New(env, "expected a TypedArray");
  Napi::TypedArray ta = i[0].As<Napi::TypedArray>();
  auto dt = dtypeArg(i[2], at::kFloat);
  at::Tensor t = at::empty(ints(i[1]), at::TensorOptions().dtype(dt));
  size_t bytes = t.nbytes();
  if (ta.ByteLength() != bytes)
    throw Napi::RangeError::New(env, "buffer has " + std::to_string(ta.ByteLength()) +
                                         " bytes but shape and dtype need " + std::to_string(bytes));
  auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (bytes) std::memcpy(t.data_ptr(), src, bytes);
  return wrap(env, t);
}

// toBuffer(t): the bytes of a contiguous CPU copy, handed to JS without a second copy (the ArrayBuffer owns it).
static Napi::Value ToBuffer(const Napi::CallbackInfo& i) {
  Napi::Env env = i.Env();
  const at::Tensor& src = T(i[0]);
  at::Tensor c = src.detach().to(at::kCPU).contiguous();
  if (c.is_same(src) || c.storage().is_alias_of(src.storage())) c = c.clone();  // never alias a live tensor
  if (c.nbytes() == 0) return Napi::ArrayBuffer::New(env, 0);
  auto* holder = new at::Tensor(c);
  return Napi::ArrayBuffer::New(
      env, c.data_ptr(), c.nbytes(), [](Napi::Env, void*, at::Tensor* h) { delete h; }, holder);
}

static Napi::Value Item(const Napi::CallbackInfo& i) {
  const at::Tensor& t = T(i[0]);
  if (t.numel() != 1)
    throw Napi::Error::New(i.Env(), "item() needs a tensor with one element, got " + std::to_string(t.numel()));
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(i.Env(), s.toBool());
  return Napi::Number::New(i.Env(), s.toDouble());
}

// ---- metadata ----
static Napi::Value Shape(const Napi::CallbackInfo& i) {
  auto sizes = T(i[0]).sizes();
  Napi::Array a = Napi::Array::New(i.Env(), sizes.size());
  for (size_t k = 0; k < sizes.size(); k++) a.Set(k, Napi::Number::New(i.Env(), static_cast<double>(sizes[k])));
  return a;
}
static Napi::Value Dtype(const Napi::CallbackInfo& i) {
  return Napi::Number::New(i.Env(), static_cast<int>(T(i[0]).scalar_type()));
}
static Napi::Value Device(const Napi::CallbackInfo& i) { return Napi::String::New(i.Env(), T(i[0]).device().str()); }
static Napi::Value IsContiguous(const Napi::CallbackInfo& i) {
  return Napi::Boolean::New(i.Env(), T(i[0]).is_contiguous());
}
static Napi::Value Dispose(const Napi::CallbackInfo& i) {
  if (TensorHolder* h = holder(i[0])) h->release(i.Env());
  return i.Env().Undefined();
}
static Napi::Value IsDisposed(const Napi::CallbackInfo& i) {
  TensorHolder* h = holder(i[0]);
  return Napi::Boolean::New(i.Env(), !h || !h->tensor.defined());
}

// to(t, dtype|null, device|null)
static Napi::Value To(const Napi::CallbackInfo& i) {
  const at::Tensor& t = T(i[0]);
  auto dt = dtypeArg(i[1], t.scalar_type());
  auto dev = (i[2].IsUndefined() || i[2].IsNull()) ? t.device() : deviceArg(i[2]);
  return wrap(i.Env(), t.to(dev, dt));
}
static Napi::Value Contiguous(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).contiguous()); }
static Napi::Value Clone(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).clone()); }
static Napi::Value Detach(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).detach()); }
static Napi::Value Alias(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0])); }  // same tensor, new handle

// ---- autograd ----
static Napi::Value RequiresGrad(const Napi::CallbackInfo& i) {
  return Napi::Boolean::New(i.Env(), T(i[0]).requires_grad());
}
static Napi::Value SetRequiresGrad(const Napi::CallbackInfo& i) {
  T(i[0]).requires_grad_(flag(i[1]));
  return i[0];
}
static Napi::Value IsLeaf(const Napi::CallbackInfo& i) { return Napi::Boolean::New(i.Env(), T(i[0]).is_leaf()); }
static Napi::Value Grad(const Napi::CallbackInfo& i) {
  const at::Tensor& g = T(i[0]).grad();
  return g.defined() ? wrap(i.Env(), g) : i.Env().Null();
}
static Napi::Value SetGrad(const Napi::CallbackInfo& i) {
  auto g = optT(i[1]);
  T(i[0]).mutable_grad() = g ? *g : at::Tensor();
  return i.Env().Undefined();
}
static Napi::Value Backward(const Napi::CallbackInfo& i) {  // (t, grad|null, retainGraph)
  auto g = optT(i[1]);
  T(i[0]).backward(g ? *g : at::Tensor(), flag(i[2]) ? c10::optional<bool>(true) : c10::nullopt);
  return i.Env().Undefined();
}
static Napi::Value SetGradEnabled(const Napi::CallbackInfo& i) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(flag(i[0]));
  return Napi::Boolean::New(i.Env(), prev);
}
static Napi::Value IsGradEnabled(const Napi::CallbackInfo& i) {
  return Napi::Boolean::New(i.Env(), c10::GradMode::is_enabled());
}

// ---- runtime ----
static Napi::Value SetNumThreads(const Napi::CallbackInfo& i) {
  at::set_num_threads(static_cast<int>(i64(i[0])));
  return i.Env().Undefined();
}
static Napi::Value GetNumThreads(const Napi::CallbackInfo& i) {
  return Napi::Number::New(i.Env(), at::get_num_threads());
}
static Napi::Value ManualSeed(const Napi::CallbackInfo& i) {
  at::manual_seed(static_cast<uint64_t>(i64(i[0])));
  return i.Env().Undefined();
}
static Napi::Value ShowConfig(const Napi::CallbackInfo& i) { return Napi::String::New(i.Env(), at::show_config()); }
static Napi::Value CudaDeviceCount(const Napi::CallbackInfo& i) {
  return Napi::Number::New(i.Env(), at::hasCUDA() ? static_cast<double>(at::getNumGPUs()) : 0);
}
static Napi::Value CudaSynchronize(const Napi::CallbackInfo& i) {
#if MUMU_WITH_CUDA
  // c10's device-generic interface (libtorch_cuda registers it): steadier across PyTorch 2.x than the CUDA hooks
  if (at::hasCUDA()) {
    const auto* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
    impl->synchronizeDevice(impl->getDevice().index());
  }
#endif
  return i.Env().Undefined();
}

static Napi::Value LiveBytes(const Napi::CallbackInfo& i) {
  return Napi::Number::New(i.Env(), static_cast<double>(liveBytes));
}

void InitTensor(Napi::Env env, Napi::Object exports) {
  // Tensor storage comes from a caching allocator (allocator.cc): on glibc's heap, buffers freed inside Node were
  // not reused and resident memory grew step after step. MUMU_MALLOC_DEFAULT=1 keeps libtorch's own allocator.
  if (!std::getenv("MUMU_MALLOC_DEFAULT")) installCachingAllocator();
  EXPORT("liveBytes", LiveBytes);
  Napi::Function g = GeneratorWrap::DefineClass(env, "NativeGenerator", {});
  GeneratorWrap::ctor = new Napi::FunctionReference(Napi::Persistent(g));
  exports.Set("NativeGenerator", g);
  EXPORT("generatorGetState", GeneratorGetState);
  EXPORT("generatorSetState", GeneratorSetState);
  EXPORT("zeros", Zeros);
  EXPORT("ones", Ones);
  EXPORT("empty", Empty);
  EXPORT("full", Full);
  EXPORT("arange", Arange);
  EXPORT("linspace", Linspace);
  EXPORT("eye", Eye);
  EXPORT("randn", Randn);
  EXPORT("rand", Rand);
  EXPORT("randint", Randint);
  EXPORT("randperm", Randperm);
  EXPORT("multinomial", Multinomial);
  EXPORT("normal_", Normal_);
  EXPORT("uniform_", Uniform_);
  EXPORT("fromBuffer", FromBuffer);
  EXPORT("toBuffer", ToBuffer);
  EXPORT("item", Item);
  EXPORT("shape", Shape);
  EXPORT("dtype", Dtype);
  EXPORT("device", Device);
  EXPORT("isContiguous", IsContiguous);
  EXPORT("dispose", Dispose);
  EXPORT("isDisposed", IsDisposed);
  EXPORT("to", To);
  EXPORT("contiguous", Contiguous);
  EXPORT("clone", Clone);
  EXPORT("detach", Detach);
  EXPORT("alias", Alias);
  EXPORT("requiresGrad", RequiresGrad);
  EXPORT("setRequiresGrad", SetRequiresGrad);
  EXPORT("isLeaf", IsLeaf);
  EXPORT("grad", Grad);
  EXPORT("setGrad", SetGrad);
  EXPORT("backward", Backward);
  EXPORT("setGradEnabled", SetGradEnabled);
  EXPORT("isGradEnabled", IsGradEnabled);
  EXPORT("setNumThreads", SetNumThreads);
  EXPORT("getNumThreads", GetNumThreads);
  EXPORT("manualSeed", ManualSeed);
  EXPORT("showConfig", ShowConfig);
  EXPORT("cudaDeviceCount", CudaDeviceCount);
  EXPORT("cudaSynchronize", CudaSynchronize);
}

}  // namespace mumu
