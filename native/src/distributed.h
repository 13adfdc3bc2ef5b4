// Shared by distributed.cc and distributed_nccl.cc (compiled only when the linked libtorch has NCCL).
#pragma once
#include <torch/version.h>
#include <chrono>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

// libtorch 1.13: ProcessGroupGloo / ProcessGroupNCCL derive from c10d::ProcessGroup. 2.x moved the collectives to
// c10d::Backend (ProcessGroup became a dispatcher over backends) and the process groups derive from that.
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
namespace mumu {
using Collectives = c10d::Backend;
}
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
namespace mumu {
using Collectives = c10d::ProcessGroup;
}
#endif

namespace mumu {
// A ProcessGroupNCCL over `store` (distributed_nccl.cc); NCCL creates its communicators lazily, at the first
// collective.
c10::intrusive_ptr<Collectives> makeNccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                         std::chrono::milliseconds timeout);
}  // namespace mumu
