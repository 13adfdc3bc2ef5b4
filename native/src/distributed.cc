// Data-parallel collectives on libtorch's own distributed engine, c10d: a rendezvous store (TCPStore; FileStore for
// a shared file system), a process group (Gloo for CPU tensors; NCCL for CUDA tensors when the linked libtorch has
// it), and the three collectives the trainer needs: all-reduce of a tensor list packed into flat buckets, broadcast
// from a root, barrier; and a key set / wait in the store, for waits longer than a collective's timeout. No protocol of
// our own: the bytes move through Gloo / NCCL exactly as in torch.distributed.
//
// Threads. Starting a group (connecting to every peer) and waiting for a collective can block for up to the timeout,
// so both happen on libuv's worker pool and return Promises: meanwhile the JS thread keeps delivering signals
// (SIGINT/SIGTERM stop a run), timers and I/O. Collectives are *issued* on the JS thread, in call order, and only
// waited for on the pool: Gloo matches operations across ranks by the order they were issued in, which a pool of
// worker threads would scramble.
//
// Failure. Every wait is bounded: Gloo's connect and transfer timeouts are the group's timeout, a peer that exits
// closes its sockets and fails the transfer at once, and the TCPStore bounds the rendezvous. Errors come back as JS
// Errors that name this rank and the operation.
#include "common.h"
#include "distributed.h"

#if MUMU_WITH_C10D
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

namespace mumu {

namespace {

struct Group {
  int rank = 0, size = 1;
  std::chrono::milliseconds timeout{60000};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> gloo;  // CPU tensors, and CUDA tensors when there is no NCCL group
  c10::intrusive_ptr<Collectives> nccl;  // CUDA tensors, when built with NCCL and asked for
  // after a failed collective the peers' connections are unusable; set on the pool, read on the JS thread
  std::mutex mu;
  std::string failure;
  void fail(const std::string& m) {
    std::lock_guard<std::mutex> lock(mu);
    if (failure.empty()) failure = m;
  }
  std::string failed() {
    std::lock_guard<std::mutex> lock(mu);
    return failure;
  }
};
using GroupPtr = std::shared_ptr<Group>;

const napi_type_tag kGroupTag = {0x6d756d752d646973ULL, 0x742d67726f757021ULL};

struct GroupHolder {
  GroupPtr group;
};

GroupPtr& groupArg(const Napi::Value& v) {
  bool tagged = false;
  if (v.IsExternal()) napi_check_object_type_tag(v.Env(), v, &kGroupTag, &tagged);
  if (!tagged) throw Napi::TypeError::New(v.Env(), "expected a process group");
  GroupPtr& g = v.As<Napi::External<GroupHolder>>().Data()->group;
  if (!g) throw Napi::Error::New(v.Env(), "the process group was destroyed");
  return g;
}

// "[/build/gloo/transport/tcp/pair.cc:598] Connection closed by peer [127.0.0.1]:4114" -> the part after the
// source location; c10::Error's message without its C++ backtrace.
std::string reasonOf(std::exception_ptr e) {
  std::string m;
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& err) {
    m = err.what_without_backtrace();
  } catch (const std::exception& err) {
    m = err.what();
  } catch (...) {
    m = "unknown error";
  }
  if (m.size() > 1 && m[0] == '[') {
    size_t close = m.find("] ");
    if (close != std::string::npos && m.find(':') < close) m = m.substr(close + 2);
  }
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// A failure of the connections (a peer gone, a timeout) leaves the group unusable; an argument the backend refuses
// (a dtype Gloo cannot reduce) fails the same way on every rank before anything is sent, and does not.
bool connectionLost(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const ::gloo::IoException&) {
    return true;
  } catch (const std::exception& err) {
    std::string m = err.what();
    return has(m, "imed out") || has(m, "imeout") || has(m, "NCCL") || has(m, "closed") || has(m, "reset");
  } catch (...) {
    return true;
  }
}

std::string failureMessage(const Group& g, const std::string& op, const std::string& why) {
  std::ostringstream o;
  o << "rank " << g.rank << " of " << g.size << ": " << op << " failed: " << why;
  if (has(why, "closed by peer") || has(why, "reset by peer") || has(why, "Broken pipe") ||
      has(why, "Connection refused"))
    o << " (another rank exited or its host went away)";
  else if ((has(why, "imed out") || has(why, "imeout")) && op.rfind("rendezvous", 0) == 0)
    o << " (no answer within " << g.timeout.count() / 1000.0
      << " s: is every rank started, with the same master address and port?)";
  else if (has(why, "imed out") || has(why, "imeout"))
    o << " (no answer within " << g.timeout.count() / 1000.0 << " s: a rank is missing, stuck or unreachable)";
  return o.str();
}

// Runs `work` on libuv's pool and settles a Promise: `done` (on the JS thread) makes the resolved value.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done = nullptr)
      : Napi::AsyncWorker(env, "mumu.distributed"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      work_();
    } catch (...) {
      SetError(reasonOf(std::current_exception()));
    }
  }
  void OnOK() override { deferred_.Resolve(done_ ? done_(Env()) : Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
};

Napi::Value run(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done = nullptr) {
  auto* job = new Job(env, std::move(work), std::move(done));  // deletes itself when settled
  Napi::Promise p = job->promise();
  job->Queue();
  return p;
}

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// Gloo's network devices: GLOO_SOCKET_IFNAME (comma-separated interfaces) as in torch.distributed; else the address
// given (src/torch/distributed.ts passes the local address that routes to the master: on Debian the host name
// resolves to 127.0.1.1, which other hosts cannot reach); else torch's default, the address of this host's name.
std::vector<std::shared_ptr<::gloo::transport::Device>> glooDevices(const std::string& address) {
  std::vector<std::shared_ptr<::gloo::transport::Device>> out;
  std::string names = envOr("GLOO_SOCKET_IFNAME", "");
  std::stringstream ss(names);
  for (std::string name; std::getline(ss, name, ',');)
    if (!name.empty()) out.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
  if (out.empty() && !address.empty()) out.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(address));
  if (out.empty()) out.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  return out;
}

// initProcessGroup({rank, size, timeoutMs, masterAddr, masterPort | storePath, localAddr, nccl}) -> Promise<group>
Napi::Value Init(const Napi::CallbackInfo& i) {
  Napi::Object o = i[0].As<Napi::Object>();
  auto g = std::make_shared<Group>();
  g->rank = static_cast<int>(i64(o.Get("rank")));
  g->size = static_cast<int>(i64(o.Get("size")));
  g->timeout = std::chrono::milliseconds(i64(o.Get("timeoutMs")));
  std::string storePath = o.Has("storePath") && o.Get("storePath").IsString() ? str(o.Get("storePath")) : "";
  std::string addr = storePath.empty() ? str(o.Get("masterAddr")) : "";
  int port = storePath.empty() ? static_cast<int>(i64(o.Get("masterPort"))) : 0;
  bool wantNccl = flag(o.Get("nccl"));
  std::string localAddr = o.Has("localAddr") && o.Get("localAddr").IsString() ? str(o.Get("localAddr")) : "";
  if (g->size < 1 || g->rank < 0 || g->rank >= g->size)
    throw Napi::RangeError::New(i.Env(), "rank must be in [0, worldSize) and worldSize >= 1");
#if !MUMU_WITH_NCCL
  if (wantNccl)
    throw Napi::Error::New(
        i.Env(),
        "backend 'nccl': this build of the binding has no NCCL (it needs a CUDA libtorch with NCCL and nccl.h)");
#endif
  return run(
      i.Env(),
      [g, storePath, addr, port, wantNccl, localAddr]() {
        std::string where = "rendezvous of " + std::to_string(g->size) + " ranks at " +
                            (storePath.empty() ? addr + ":" + std::to_string(port) : storePath);
        try {
          if (storePath.empty()) {
            c10d::TCPStoreOptions so;
            so.port = static_cast<std::uint16_t>(port);
            so.isServer = g->rank == 0;  // rank 0 hosts the store, as torchrun's env:// rendezvous does
            so.numWorkers = g->size;
            so.waitWorkers = true;
            so.timeout = g->timeout;
            g->store = c10::make_intrusive<c10d::TCPStore>(addr, so);
          } else {
            g->store = c10::make_intrusive<c10d::FileStore>(storePath, g->size);
          }
          g->store->setTimeout(g->timeout);
          auto options = c10d::ProcessGroupGloo::Options::create(g->timeout);
          options->devices = glooDevices(localAddr);
          auto glooStore = c10::make_intrusive<c10d::PrefixStore>("gloo", g->store);
          g->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(glooStore, g->rank, g->size, options);
#if MUMU_WITH_NCCL
          if (wantNccl)
            g->nccl = makeNccl(c10::make_intrusive<c10d::PrefixStore>("nccl", g->store), g->rank, g->size, g->timeout);
#endif
        } catch (...) {
          throw std::runtime_error(failureMessage(*g, where, reasonOf(std::current_exception())));
        }
      },
      [g](Napi::Env env) -> Napi::Value {
        napi_value v;
        auto* h = new GroupHolder{g};
        NAPI_THROW_IF_FAILED(
            env,
            napi_create_external(
                env, h, [](node_api_basic_env, void* d, void*) { delete static_cast<GroupHolder*>(d); }, nullptr, &v),
            Napi::Value());
        NAPI_THROW_IF_FAILED(env, napi_type_tag_object(env, v, &kGroupTag), Napi::Value());
        return Napi::Value(env, v);
      });
}

// A flat bucket: tensors of one dtype and device, concatenated (or one contiguous tensor used in place).
struct Bucket {
  std::vector<at::Tensor> members;
  at::Tensor flat;
  bool inPlace = false;
  c10::intrusive_ptr<c10d::Work> work;
};

// Buckets of at most `capBytes` (a bigger tensor gets one of its own), filled in list order per (dtype, device), so
// every rank that passes the same list builds the same buckets. capBytes 0: one bucket per tensor.
std::vector<Bucket> bucketize(const std::vector<at::Tensor>& ts, int64_t capBytes) {
  std::vector<Bucket> out;
  std::map<std::string, size_t> open;  // (dtype, device) -> its bucket being filled
  std::map<size_t, int64_t> bytes;
  for (const at::Tensor& t : ts) {
    if (t.layout() != at::kStrided) throw std::runtime_error("collectives take dense tensors");
    std::string key = std::string(c10::toString(t.scalar_type())) + "@" + t.device().str();
    int64_t nb = static_cast<int64_t>(t.numel() * t.element_size());
    auto it = open.find(key);
    if (it == open.end() || capBytes == 0 || bytes[it->second] + nb > capBytes) {
      out.emplace_back();
      open[key] = out.size() - 1;
      it = open.find(key);
    }
    out[it->second].members.push_back(t);
    bytes[it->second] += nb;
  }
  return out;
}

void pack(Bucket& b, bool fillValues) {
  if (b.members.size() == 1 && b.members[0].is_contiguous()) {
    b.flat = b.members[0].view({-1});
    b.inPlace = true;
  } else if (fillValues) {
    std::vector<at::Tensor> flat;
    for (auto& t : b.members) flat.push_back(t.reshape({-1}));
    b.flat = at::cat(flat);
  } else {
    int64_t n = 0;
    for (auto& t : b.members) n += t.numel();
    b.flat = at::empty({n}, b.members[0].options());
  }
}

void unpack(Bucket& b) {
  if (b.inPlace) return;
  int64_t offset = 0;
  for (at::Tensor& t : b.members) {
    t.copy_(b.flat.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

Collectives& backendFor(Group& g, const at::Tensor& t) {
  if (t.is_cuda() && g.nccl) return *g.nccl;
  return *g.gloo;
}

// Issued here (JS thread, in order); waited for, averaged and copied back on the pool.
Napi::Value waitAll(Napi::Env env, GroupPtr g, std::string op, std::shared_ptr<std::vector<Bucket>> buckets,
                    std::function<void(Bucket&)> after) {
  return run(env, [g, op, buckets, after]() {
    at::NoGradGuard noGrad;  // grad mode is per thread: copying into parameters must not record a graph
    bool cuda = false;
    std::string of;
    try {
      for (Bucket& b : *buckets) {
        if (b.flat.defined()) of = std::string(" of ") + c10::toString(b.flat.scalar_type()) + " tensors";
        b.work->wait();  // bounded by the group's timeout (Gloo's own, NCCL's blocking wait)
        if (after) after(b);
        unpack(b);
        cuda = cuda || b.flat.is_cuda();
      }
#if MUMU_WITH_CUDA
      if (cuda) at::detail::getCUDAHooks().deviceSynchronize(at::detail::getCUDAHooks().current_device());
#endif
    } catch (...) {
      std::string m = failureMessage(*g, op + of, reasonOf(std::current_exception()));
      if (connectionLost(std::current_exception())) g->fail(m);
      throw std::runtime_error(m);
    }
  });
}

void checkUsable(const Napi::Env& env, Group& g) {
  std::string f = g.failed();
  if (!f.empty()) throw Napi::Error::New(env, "the process group is unusable after an earlier failure: " + f);
}

// Gloo in libtorch 1.13 moves these dtypes only (2.x adds bfloat16): refuse others before issuing anything, with the
// names a user knows, instead of Gloo's "Invalid scalar type" from inside the collective.
void checkDtypes(const Group& g, const std::vector<at::Tensor>& ts, const std::string& op) {
#if TORCH_VERSION_MAJOR < 2
  for (const at::Tensor& t : ts) {
    if (t.is_cuda() && g.nccl) continue;
    switch (t.scalar_type()) {
      case at::kFloat:
      case at::kDouble:
      case at::kHalf:
      case at::kChar:
      case at::kByte:
      case at::kInt:
      case at::kLong:
        continue;
      default:
        throw std::runtime_error(
            op + ": Gloo (libtorch " TORCH_VERSION ") cannot move " + c10::toString(t.scalar_type()) +
            " tensors (float32, float64, float16, int8, uint8, int32, int64 only): convert them first");
    }
  }
#endif
}

// Issuing checks the arguments (a dtype the backend cannot reduce, say) before anything is sent: an error here leaves
// the group usable.
c10::intrusive_ptr<c10d::Work> issue(Group& g, const std::string& op, const at::Tensor& flat,
                                     std::function<c10::intrusive_ptr<c10d::Work>()> call) {
  try {
    return call();
  } catch (...) {
    std::string of = flat.defined() ? std::string(" of ") + c10::toString(flat.scalar_type()) + " tensors" : "";
    throw std::runtime_error(failureMessage(g, op + of, reasonOf(std::current_exception())));
  }
}

// allReduce(group, tensors[], op 'sum'|'avg'|'max'|'min', bucketBytes) -> Promise<void>; the tensors hold the result.
Napi::Value AllReduce(const Napi::CallbackInfo& i) {
  GroupPtr g = groupArg(i[0]);
  checkUsable(i.Env(), *g);
  std::vector<at::Tensor> ts = tensorList(i[1]);
  std::string op = str(i[2]);
  int64_t cap = i64(i[3]);
  c10d::AllreduceOptions opts;
  if (op == "sum" || op == "avg")
    opts.reduceOp = c10d::ReduceOp::SUM;  // Gloo has no AVG: sum, then divide
  else if (op == "max")
    opts.reduceOp = c10d::ReduceOp::MAX;
  else if (op == "min")
    opts.reduceOp = c10d::ReduceOp::MIN;
  else
    throw Napi::Error::New(i.Env(), "allReduce: op must be 'sum', 'avg', 'max' or 'min', got '" + op + "'");
  if (op == "avg")
    for (auto& t : ts)
      if (!at::isFloatingType(t.scalar_type()) && !at::isComplexType(t.scalar_type()))
        throw Napi::TypeError::New(i.Env(), std::string("allReduce 'avg' needs floating-point tensors, got ") +
                                                c10::toString(t.scalar_type()));
  checkDtypes(*g, ts, "allReduce");
  at::NoGradGuard noGrad;
  auto buckets = std::make_shared<std::vector<Bucket>>(bucketize(ts, cap));
  std::string what = "allReduce(" + op + ")";
  for (Bucket& b : *buckets) {  // each bucket on its way before the next is packed
    pack(b, true);
    std::vector<at::Tensor> one{b.flat};
    b.work = issue(*g, what, b.flat, [&] { return backendFor(*g, b.flat).allreduce(one, opts); });
  }
  int size = g->size;
  std::function<void(Bucket&)> after = nullptr;
  if (op == "avg") after = [size](Bucket& b) { b.flat.div_(size); };
  return waitAll(i.Env(), g, what, buckets, after);
}

// broadcast(group, tensors[], root, bucketBytes) -> Promise<void>: every rank's tensors get root's values.
Napi::Value Broadcast(const Napi::CallbackInfo& i) {
  GroupPtr g = groupArg(i[0]);
  checkUsable(i.Env(), *g);
  std::vector<at::Tensor> ts = tensorList(i[1]);
  int64_t root = i64(i[2]);
  int64_t cap = i64(i[3]);
  if (root < 0 || root >= g->size)
    throw Napi::RangeError::New(
        i.Env(), "broadcast: root " + std::to_string(root) + " is not a rank of a group of " + std::to_string(g->size));
  checkDtypes(*g, ts, "broadcast");
  at::NoGradGuard noGrad;
  auto buckets = std::make_shared<std::vector<Bucket>>(bucketize(ts, cap));
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  std::string what = "broadcast(root " + std::to_string(root) + ")";
  for (Bucket& b : *buckets) {
    pack(b, /*fillValues=*/g->rank == root);
    std::vector<at::Tensor> one{b.flat};
    b.work = issue(*g, what, b.flat, [&] { return backendFor(*g, b.flat).broadcast(one, opts); });
  }
  return waitAll(i.Env(), g, what, buckets, nullptr);
}

// barrier(group) -> Promise<void>: resolves once every rank has reached it.
Napi::Value Barrier(const Napi::CallbackInfo& i) {
  GroupPtr g = groupArg(i[0]);
  checkUsable(i.Env(), *g);
  auto buckets = std::make_shared<std::vector<Bucket>>(1);
  (*buckets)[0].inPlace = true;
  (*buckets)[0].work = issue(*g, "barrier", at::Tensor(), [&] { return g->gloo->barrier(c10d::BarrierOptions()); });
  return waitAll(i.Env(), g, "barrier", buckets, nullptr);
}

// destroy(group) -> Promise<void>: closes the connections (on the pool: Gloo joins its threads, which can take as long
// as a collective still in flight).
Napi::Value Destroy(const Napi::CallbackInfo& i) {
  bool tagged = false;
  if (i[0].IsExternal()) napi_check_object_type_tag(i.Env(), i[0], &kGroupTag, &tagged);
  if (!tagged) throw Napi::TypeError::New(i.Env(), "expected a process group");
  GroupPtr g = std::move(i[0].As<Napi::External<GroupHolder>>().Data()->group);
  if (!g) return run(i.Env(), [] {});
  return run(i.Env(), [g]() mutable {
    g->nccl.reset();
    g->gloo.reset();
    g->store.reset();
    g.reset();
  });
}

// storeSet(group, key, value) -> Promise<void>: a key in the group's rendezvous store (under "mumu/"), as
// torch.distributed's store.set. With storeWait, one rank tells the others it has finished work they do not share
// (rank 0's checkpoints, sample grids, the export), which may take longer than a collective's timeout.
Napi::Value StoreSet(const Napi::CallbackInfo& i) {
  GroupPtr g = groupArg(i[0]);
  std::string key = "mumu/" + str(i[1]), value = str(i[2]);
  return run(i.Env(), [g, key, value]() {
    try {
      g->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    } catch (...) {
      std::string why = reasonOf(std::current_exception());
      throw std::runtime_error(failureMessage(*g, "setting '" + key + "' in the store", why));
    }
  });
}

// storeWait(group, key, timeoutMs, what) -> Promise<void>: resolves once a rank has set the key. Bounded by
// timeoutMs, not by the group's timeout; the store lives in rank 0's process, so when rank 0 exits the wait fails at
// once (its connection closes) instead of running out the clock.
Napi::Value StoreWait(const Napi::CallbackInfo& i) {
  GroupPtr g = groupArg(i[0]);
  checkUsable(i.Env(), *g);
  std::string key = "mumu/" + str(i[1]);
  int64_t ms = i64(i[2]);
  std::string what = str(i[3]);
  if (ms <= 0) throw Napi::RangeError::New(i.Env(), "storeWait: the timeout must be a positive number of ms");
  return run(i.Env(), [g, key, ms, what]() {
    try {
      g->store->wait({key}, std::chrono::milliseconds(ms));
    } catch (...) {
      std::string why = reasonOf(std::current_exception());
      std::ostringstream o;
      o << "rank " << g->rank << " of " << g->size << ": " << what << " failed: " << why;
      if (has(why, "imed out") || has(why, "imeout"))
        o << " (not done within " << ms / 1000.0 << " s)";
      else
        o << " (rank 0, which hosts the store, exited or its host went away)";
      g->fail(o.str());
      throw std::runtime_error(o.str());
    }
  });
}

}  // namespace

void InitDistributed(Napi::Env env, Napi::Object exports) {
  EXPORT("distInit", Init);
  EXPORT("distAllReduce", AllReduce);
  EXPORT("distBroadcast", Broadcast);
  EXPORT("distBarrier", Barrier);
  EXPORT("distDestroy", Destroy);
  EXPORT("distStoreSet", StoreSet);
  EXPORT("distStoreWait", StoreWait);
  exports.Set("withC10d", Napi::Boolean::New(env, true));
  exports.Set("withNccl", Napi::Boolean::New(env, MUMU_WITH_NCCL != 0));
}

}  // namespace mumu

#else  // built without c10d (no Gloo headers): the functions exist and say why they cannot work

namespace mumu {
static Napi::Value Missing(const Napi::CallbackInfo& i) {
  throw Napi::Error::New(i.Env(),
                         "this build of mumu's binding has no distributed support: libtorch's c10d or the Gloo headers "
                         "were not found at build time (Debian: apt-get install libgloo-dev, then npm run setup)");
}
void InitDistributed(Napi::Env env, Napi::Object exports) {
  for (const char* name :
       {"distInit", "distAllReduce", "distBroadcast", "distBarrier", "distDestroy", "distStoreSet", "distStoreWait"})
    EXPORT(name, Missing);
  exports.Set("withC10d", Napi::Boolean::New(env, false));
  exports.Set("withNccl", Napi::Boolean::New(env, false));
}
}  // namespace mumu

#endif
