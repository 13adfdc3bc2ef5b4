// The NCCL process group, for CUDA tensors. Built only against a libtorch with NCCL (PyTorch's CUDA wheels) when
// nccl.h and the CUDA runtime headers are found (scripts/find-libtorch.mjs nccl). Never run on the machine this
// project is developed on (no GPU): see docs/TRAINING.md, "Distributed".
#define USE_C10D_NCCL  // ProcessGroupNCCL.hpp is empty without it
#include "distributed.h"
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <cstdlib>

namespace mumu {

c10::intrusive_ptr<Collectives> makeNccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                         std::chrono::milliseconds timeout) {
  // Without blocking wait, a collective on a dead peer would wait on the GPU forever (or its watchdog would abort
  // the process): with it, Work::wait throws after `timeout`, which the binding turns into a JS Error. 1.13 reads
  // NCCL_BLOCKING_WAIT, 2.x TORCH_NCCL_BLOCKING_WAIT; the user's own setting wins.
  setenv("NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  setenv("TORCH_NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}

}  // namespace mumu
