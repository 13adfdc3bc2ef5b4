// Elementwise math, comparisons, reductions, shape ops and matrix products: thin calls into ATen, autograd included.
#include "common.h"

namespace mumu {

#define UNARY(NAME, EXPR)                                \
  static Napi::Value NAME(const Napi::CallbackInfo& i) { \
    const at::Tensor& a = T(i[0]);                       \
    return wrap(i.Env(), EXPR);                          \
  }
UNARY(Exp, a.exp())
UNARY(Log, a.log())
UNARY(Sqrt, a.sqrt())
UNARY(Rsqrt, a.rsqrt())
UNARY(Abs, a.abs())
UNARY(Neg, a.neg())
UNARY(Tanh, a.tanh())
UNARY(Sigmoid, a.sigmoid())
UNARY(Silu, at::silu(a))
UNARY(Relu, a.relu())
UNARY(Sin, a.sin())
UNARY(Cos, a.cos())
UNARY(Erf, a.erf())
UNARY(Floor, a.floor())
UNARY(Ceil, a.ceil())
UNARY(Round, a.round())
UNARY(Sign, a.sign())
UNARY(Reciprocal, a.reciprocal())
UNARY(Square, a.square())
UNARY(Log1p, a.log1p())
UNARY(Expm1, a.expm1())
UNARY(LogicalNot, a.logical_not())
UNARY(IsNan, a.isnan())
UNARY(IsFinite, a.isfinite())

static Napi::Value Gelu(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::gelu(T(i[0]), str(i[1]))); }
static Napi::Value Softplus(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::softplus(T(i[0]), scalar(i[1]), scalar(i[2])));
}
static Napi::Value Clamp(const Napi::CallbackInfo& i) {  // (t, min|null, max|null)
  auto lo = i[1].IsNumber() ? c10::optional<at::Scalar>(scalar(i[1])) : c10::nullopt;
  auto hi = i[2].IsNumber() ? c10::optional<at::Scalar>(scalar(i[2])) : c10::nullopt;
  return wrap(i.Env(), at::clamp(T(i[0]), lo, hi));
}

// Binary ops take a tensor or a number on either side; numbers join type promotion as Python scalars do.
#define BINARY(NAME, FN) \
  static Napi::Value NAME(const Napi::CallbackInfo& i) { return wrap(i.Env(), FN(TorScalar(i[0]), TorScalar(i[1]))); }
BINARY(Add, at::add)
BINARY(Sub, at::sub)
BINARY(Mul, at::mul)
BINARY(Div, at::div)
BINARY(Pow, at::pow)
BINARY(Maximum, at::maximum)
BINARY(Minimum, at::minimum)
BINARY(Remainder, at::remainder)
BINARY(Eq, at::eq)
BINARY(Ne, at::ne)
BINARY(Lt, at::lt)
BINARY(Le, at::le)
BINARY(Gt, at::gt)
BINARY(Ge, at::ge)
BINARY(LogicalAnd, at::logical_and)
BINARY(LogicalOr, at::logical_or)
BINARY(Atan2, at::atan2)

// In-place updates (optimisers, EMA, init): return the same handle.
#define INPLACE(NAME, METHOD)                            \
  static Napi::Value NAME(const Napi::CallbackInfo& i) { \
    T(i[0]).METHOD(TorScalar(i[1]));                     \
    return i[0];                                         \
  }
INPLACE(Add_, add_)
INPLACE(Sub_, sub_)
INPLACE(Mul_, mul_)
INPLACE(Div_, div_)
INPLACE(Copy_, copy_)
static Napi::Value Fill_(const Napi::CallbackInfo& i) {
  T(i[0]).fill_(scalar(i[1]));
  return i[0];
}
static Napi::Value Zero_(const Napi::CallbackInfo& i) {
  T(i[0]).zero_();
  return i[0];
}
static Napi::Value Lerp_(const Napi::CallbackInfo& i) {  // (t, end, weight): EMA updates
  T(i[0]).lerp_(T(i[1]), scalar(i[2]));
  return i[0];
}

static Napi::Value Where(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::where(T(i[0]), TorScalar(i[1]), TorScalar(i[2])));
}
static Napi::Value Equal(const Napi::CallbackInfo& i) {
  return Napi::Boolean::New(i.Env(), at::equal(T(i[0]), T(i[1])));
}
static Napi::Value Allclose(const Napi::CallbackInfo& i) {
  return Napi::Boolean::New(i.Env(), at::allclose(T(i[0]), T(i[1]), f64(i[2]), f64(i[3])));
}

// ---- reductions: (t, dims|null, keepdim) ----
static at::IntArrayRef dimsOrAll(const c10::optional<std::vector<int64_t>>& d) {
  return d ? at::IntArrayRef(*d) : at::IntArrayRef();
}
static Napi::Value Sum(const Napi::CallbackInfo& i) {
  auto d = optInts(i[1]);
  const at::Tensor& a = T(i[0]);
  auto dt = i[3].IsNumber() ? c10::optional<at::ScalarType>(dtypeArg(i[3], at::kFloat)) : c10::nullopt;
  return wrap(i.Env(), d ? at::sum(a, *d, flag(i[2]), dt) : at::sum(a, dt));
}
static Napi::Value Mean(const Napi::CallbackInfo& i) {
  auto d = optInts(i[1]);
  const at::Tensor& a = T(i[0]);
  return wrap(i.Env(), d ? at::mean(a, *d, flag(i[2])) : at::mean(a));
}
static Napi::Value Amax(const Napi::CallbackInfo& i) {
  auto d = optInts(i[1]);
  return wrap(i.Env(), at::amax(T(i[0]), dimsOrAll(d), flag(i[2])));
}
static Napi::Value Amin(const Napi::CallbackInfo& i) {
  auto d = optInts(i[1]);
  return wrap(i.Env(), at::amin(T(i[0]), dimsOrAll(d), flag(i[2])));
}
static Napi::Value MaxDim(const Napi::CallbackInfo& i) {  // (t, dim, keepdim) -> [values, indices]
  auto r = at::max(T(i[0]), i64(i[1]), flag(i[2]));
  return wrapList(i.Env(), {std::get<0>(r), std::get<1>(r)});
}
static Napi::Value MinDim(const Napi::CallbackInfo& i) {
  auto r = at::min(T(i[0]), i64(i[1]), flag(i[2]));
  return wrapList(i.Env(), {std::get<0>(r), std::get<1>(r)});
}
static Napi::Value Var(const Napi::CallbackInfo& i) {  // (t, dims|null, correction, keepdim)
  auto d = optInts(i[1]);
  c10::OptionalIntArrayRef od = d ? c10::OptionalIntArrayRef(*d) : c10::nullopt;
  return wrap(i.Env(), at::var(T(i[0]), od, c10::optional<int64_t>(i64(i[2])), flag(i[3])));
}
static Napi::Value Std(const Napi::CallbackInfo& i) {
  auto d = optInts(i[1]);
  c10::OptionalIntArrayRef od = d ? c10::OptionalIntArrayRef(*d) : c10::nullopt;
  return wrap(i.Env(), at::std(T(i[0]), od, c10::optional<int64_t>(i64(i[2])), flag(i[3])));
}
static Napi::Value Argmax(const Napi::CallbackInfo& i) {  // (t, dim|null, keepdim)
  auto d = i[1].IsNumber() ? c10::optional<int64_t>(i64(i[1])) : c10::nullopt;
  return wrap(i.Env(), at::argmax(T(i[0]), d, flag(i[2])));
}
static Napi::Value Argmin(const Napi::CallbackInfo& i) {
  auto d = i[1].IsNumber() ? c10::optional<int64_t>(i64(i[1])) : c10::nullopt;
  return wrap(i.Env(), at::argmin(T(i[0]), d, flag(i[2])));
}
static Napi::Value Logsumexp(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::logsumexp(T(i[0]), ints(i[1]), flag(i[2])));
}
static Napi::Value Cumsum(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::cumsum(T(i[0]), i64(i[1]))); }
static Napi::Value Norm(const Napi::CallbackInfo& i) {  // (t, p, dims|null, keepdim)
  auto d = optInts(i[2]);
  return wrap(i.Env(), d ? at::norm(T(i[0]), scalar(i[1]), *d, flag(i[3])) : at::norm(T(i[0]), scalar(i[1])));
}
static Napi::Value All(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::all(T(i[0]))); }
static Napi::Value Any(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::any(T(i[0]))); }
static Napi::Value Topk(const Napi::CallbackInfo& i) {  // (t, k, dim, largest) -> [values, indices]
  auto r = at::topk(T(i[0]), i64(i[1]), i64(i[2]), flag(i[3]), true);
  return wrapList(i.Env(), {std::get<0>(r), std::get<1>(r)});
}
static Napi::Value Sort(const Napi::CallbackInfo& i) {  // (t, dim, descending)
  auto r = at::sort(T(i[0]), i64(i[1]), flag(i[2]));
  return wrapList(i.Env(), {std::get<0>(r), std::get<1>(r)});
}

// ---- shape ----
static Napi::Value Reshape(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).reshape(ints(i[1]))); }
static Napi::Value View(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).view(ints(i[1]))); }
static Napi::Value Permute(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).permute(ints(i[1]))); }
static Napi::Value Transpose(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), T(i[0]).transpose(i64(i[1]), i64(i[2])));
}
static Napi::Value Flatten(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).flatten(i64(i[1]), i64(i[2]))); }
static Napi::Value Squeeze(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), i[1].IsNumber() ? T(i[0]).squeeze(i64(i[1])) : T(i[0]).squeeze());
}
static Napi::Value Unsqueeze(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).unsqueeze(i64(i[1]))); }
static Napi::Value Expand(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).expand(ints(i[1]))); }
static Napi::Value Repeat(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).repeat(ints(i[1]))); }
static Napi::Value Cat(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::cat(tensorList(i[0]), i64(i[1]))); }
static Napi::Value Stack(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::stack(tensorList(i[0]), i64(i[1]))); }
static Napi::Value Split(const Napi::CallbackInfo& i) {  // (t, size | sizes[], dim)
  const at::Tensor& a = T(i[0]);
  auto parts = i[1].IsArray() ? a.split_with_sizes(ints(i[1]), i64(i[2])) : a.split(i64(i[1]), i64(i[2]));
  return wrapList(i.Env(), parts);
}
static Napi::Value Chunk(const Napi::CallbackInfo& i) { return wrapList(i.Env(), T(i[0]).chunk(i64(i[1]), i64(i[2]))); }
static Napi::Value Narrow(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), T(i[0]).narrow(i64(i[1]), i64(i[2]), i64(i[3])));
}
static Napi::Value Slice(const Napi::CallbackInfo& i) {  // (t, dim, start, end|null, step)
  auto end = i[3].IsNumber() ? c10::optional<int64_t>(i64(i[3])) : c10::nullopt;
  return wrap(i.Env(), T(i[0]).slice(i64(i[1]), i64(i[2]), end, i64(i[4])));
}
static Napi::Value Select(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).select(i64(i[1]), i64(i[2]))); }
static Napi::Value IndexSelect(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), T(i[0]).index_select(i64(i[1]), T(i[2])));
}
static Napi::Value Gather(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).gather(i64(i[1]), T(i[2]))); }
static Napi::Value ScatterAdd(const Napi::CallbackInfo& i) {  // (t, dim, index, src)
  return wrap(i.Env(), T(i[0]).scatter_add(i64(i[1]), T(i[2]), T(i[3])));
}
static Napi::Value MaskedFill(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), i[2].IsNumber() || i[2].IsBoolean() ? T(i[0]).masked_fill(T(i[1]), scalar(i[2]))
                                                           : T(i[0]).masked_fill(T(i[1]), T(i[2])));
}
static Napi::Value MaskedScatter(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), T(i[0]).masked_scatter(T(i[1]), T(i[2])));
}
static Napi::Value IndexPut(const Napi::CallbackInfo& i) {  // (t, indices[], values, accumulate): out-of-place
  c10::List<c10::optional<at::Tensor>> idx;
  for (auto& t : tensorList(i[1])) idx.push_back(t);
  return wrap(i.Env(), T(i[0]).index_put(idx, T(i[2]), flag(i[3])));
}
static Napi::Value Index(const Napi::CallbackInfo& i) {  // (t, indices[]): advanced indexing t[i0, i1, ...]
  c10::List<c10::optional<at::Tensor>> idx;
  for (auto& t : tensorList(i[1])) idx.push_back(t);
  return wrap(i.Env(), at::index(T(i[0]), idx));
}
static Napi::Value Pad(const Napi::CallbackInfo& i) {  // (t, pads, mode, value)
  auto v = i[3].IsNumber() ? c10::optional<double>(f64(i[3])) : c10::nullopt;
  return wrap(i.Env(), at::pad(T(i[0]), ints(i[1]), str(i[2]), v));
}
static Napi::Value RepeatInterleave(const Napi::CallbackInfo& i) {  // (t, repeats, dim)
  return wrap(i.Env(), T(i[0]).repeat_interleave(i64(i[1]), i64(i[2])));
}
static Napi::Value Flip(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).flip(ints(i[1]))); }
static Napi::Value Roll(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).roll(ints(i[1]), ints(i[2]))); }
static Napi::Value Tril(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).tril(i64(i[1]))); }
static Napi::Value Triu(const Napi::CallbackInfo& i) { return wrap(i.Env(), T(i[0]).triu(i64(i[1]))); }

// ---- products ----
static Napi::Value Matmul(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::matmul(T(i[0]), T(i[1]))); }
static Napi::Value Bmm(const Napi::CallbackInfo& i) { return wrap(i.Env(), at::bmm(T(i[0]), T(i[1]))); }
static Napi::Value Linear(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::linear(T(i[0]), T(i[1]), optT(i[2])));
}
static Napi::Value Addmm(const Napi::CallbackInfo& i) {  // (bias, a, b, beta, alpha)
  return wrap(i.Env(), at::addmm(T(i[0]), T(i[1]), T(i[2]), scalar(i[3]), scalar(i[4])));
}
static Napi::Value Einsum(const Napi::CallbackInfo& i) {
  return wrap(i.Env(), at::einsum(str(i[0]), tensorList(i[1])));
}

void InitOps(Napi::Env env, Napi::Object exports) {
  EXPORT("exp", Exp);
  EXPORT("log", Log);
  EXPORT("sqrt", Sqrt);
  EXPORT("rsqrt", Rsqrt);
  EXPORT("abs", Abs);
  EXPORT("neg", Neg);
  EXPORT("tanh", Tanh);
  EXPORT("sigmoid", Sigmoid);
  EXPORT("silu", Silu);
  EXPORT("relu", Relu);
  EXPORT("sin", Sin);
  EXPORT("cos", Cos);
  EXPORT("erf", Erf);
  EXPORT("floor", Floor);
  EXPORT("ceil", Ceil);
  EXPORT("round", Round);
  EXPORT("sign", Sign);
  EXPORT("reciprocal", Reciprocal);
  EXPORT("square", Square);
  EXPORT("log1p", Log1p);
  EXPORT("expm1", Expm1);
  EXPORT("logicalNot", LogicalNot);
  EXPORT("isnan", IsNan);
  EXPORT("isfinite", IsFinite);
  EXPORT("gelu", Gelu);
  EXPORT("softplus", Softplus);
  EXPORT("clamp", Clamp);
  EXPORT("add", Add);
  EXPORT("sub", Sub);
  EXPORT("mul", Mul);
  EXPORT("div", Div);
  EXPORT("pow", Pow);
  EXPORT("maximum", Maximum);
  EXPORT("minimum", Minimum);
  EXPORT("remainder", Remainder);
  EXPORT("eq", Eq);
  EXPORT("ne", Ne);
  EXPORT("lt", Lt);
  EXPORT("le", Le);
  EXPORT("gt", Gt);
  EXPORT("ge", Ge);
  EXPORT("logicalAnd", LogicalAnd);
  EXPORT("logicalOr", LogicalOr);
  EXPORT("atan2", Atan2);
  EXPORT("add_", Add_);
  EXPORT("sub_", Sub_);
  EXPORT("mul_", Mul_);
  EXPORT("div_", Div_);
  EXPORT("copy_", Copy_);
  EXPORT("fill_", Fill_);
  EXPORT("zero_", Zero_);
  EXPORT("lerp_", Lerp_);
  EXPORT("where", Where);
  EXPORT("equal", Equal);
  EXPORT("allclose", Allclose);
  EXPORT("sum", Sum);
  EXPORT("mean", Mean);
  EXPORT("amax", Amax);
  EXPORT("amin", Amin);
  EXPORT("maxDim", MaxDim);
  EXPORT("minDim", MinDim);
  EXPORT("var", Var);
  EXPORT("std", Std);
  EXPORT("argmax", Argmax);
  EXPORT("argmin", Argmin);
  EXPORT("logsumexp", Logsumexp);
  EXPORT("cumsum", Cumsum);
  EXPORT("norm", Norm);
  EXPORT("all", All);
  EXPORT("any", Any);
  EXPORT("topk", Topk);
  EXPORT("sort", Sort);
  EXPORT("reshape", Reshape);
  EXPORT("view", View);
  EXPORT("permute", Permute);
  EXPORT("transpose", Transpose);
  EXPORT("flatten", Flatten);
  EXPORT("squeeze", Squeeze);
  EXPORT("unsqueeze", Unsqueeze);
  EXPORT("expand", Expand);
  EXPORT("repeat", Repeat);
  EXPORT("cat", Cat);
  EXPORT("stack", Stack);
  EXPORT("split", Split);
  EXPORT("chunk", Chunk);
  EXPORT("narrow", Narrow);
  EXPORT("slice", Slice);
  EXPORT("select", Select);
  EXPORT("indexSelect", IndexSelect);
  EXPORT("gather", Gather);
  EXPORT("scatterAdd", ScatterAdd);
  EXPORT("maskedFill", MaskedFill);
  EXPORT("maskedScatter", MaskedScatter);
  EXPORT("indexPut", IndexPut);
  EXPORT("index", Index);
  EXPORT("pad", Pad);
  EXPORT("repeatInterleave", RepeatInterleave);
  EXPORT("flip", Flip);
  EXPORT("roll", Roll);
  EXPORT("tril", Tril);
  EXPORT("triu", Triu);
  EXPORT("matmul", Matmul);
  EXPORT("bmm", Bmm);
  EXPORT("linear", Linear);
  EXPORT("addmm", Addmm);
  EXPORT("einsum", Einsum);
}

}  // namespace mumu
