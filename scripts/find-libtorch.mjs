#!/usr/bin/env node
// Finds a libtorch to build the native binding against, in the order tch-rs uses:
// 1. LIBTORCH (a libtorch folder with include/ and lib/), 2. Debian's libtorch-dev, 3. a Python `torch` install.
// Prints one field for binding.gyp: `node find-libtorch.mjs include|libdir|libs|abi|cuda|c10d|nccl|nccl-include|describe`.
import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

function fromFolder(root, source) {
  const include = [join(root, 'include'), join(root, 'include/torch/csrc/api/include')];
  return { source, root, include, libdir: join(root, 'lib') };
}

function pythonTorchFolder() {
  try {
    const out = execFileSync('python3', ['-c', 'import torch, os; print(os.path.dirname(torch.__file__))'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.toString().trim();
  } catch {
    return null;
  }
}

export function findLibtorch() {
  if (process.env.LIBTORCH) {
    if (!existsSync(join(process.env.LIBTORCH, 'include'))) {
      throw new Error(`LIBTORCH=${process.env.LIBTORCH} has no include/ folder`);
    }
    return fromFolder(process.env.LIBTORCH, 'LIBTORCH');
  }
  const debianLib = '/usr/lib/x86_64-linux-gnu';
  const multiarch = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu'].find((d) =>
    existsSync(join(d, 'libtorch_cpu.so')),
  );
  if (existsSync('/usr/include/torch') && (multiarch || existsSync(join(debianLib, 'libtorch.so')))) {
    return {
      source: 'debian',
      root: '/usr',
      include: ['/usr/include', '/usr/include/torch/csrc/api/include'],
      libdir: multiarch ?? debianLib,
    };
  }
  const py = pythonTorchFolder();
  if (py && existsSync(join(py, 'include'))) return fromFolder(py, 'python');
  return null;
}

function libsIn(libdir) {
  const have = new Set(readdirSync(libdir));
  // torch_cuda/c10_cuda are linked when present so CUDA kernels register at load time.
  return ['torch', 'torch_cpu', 'c10', 'torch_cuda', 'c10_cuda'].filter((l) => have.has(`lib${l}.so`));
}

// Python wheels since torch 2.x use the new C++ ABI; Debian's build uses it too. Older wheels used the old one.
function cxx11Abi(info) {
  if (info.source !== 'python') return 1;
  try {
    const out = execFileSync('python3', ['-c', 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))']);
    return Number(out.toString().trim());
  } catch {
    return 1;
  }
}

const C10D = 'torch/csrc/distributed/c10d';
const firstWith = (dirs, file) => dirs.find((d) => existsSync(join(d, file)));

// c10d (torch.distributed's C++ engine): its headers ship with libtorch, but ProcessGroupGloo.hpp includes Gloo's,
// which Debian packages apart (libgloo-dev; PyTorch's own builds may carry them in include/).
function c10d(info) {
  return firstWith(info.include, join(C10D, 'ProcessGroupGloo.hpp')) &&
    firstWith([...info.include, '/usr/include'], 'gloo/context.h')
    ? 1
    : 0;
}

// NCCL: a CUDA libtorch (PyTorch's wheels) has ProcessGroupNCCL; compiling against it needs nccl.h and the CUDA
// runtime headers, which pip installs as nvidia-* packages next to torch (or a CUDA toolkit provides).
// MUMU_NCCL=0 builds without it.
function ncclIncludes(info) {
  if (process.env.MUMU_NCCL === '0' || !c10d(info) || !libsIn(info.libdir).includes('torch_cuda')) return null;
  if (!firstWith(info.include, join(C10D, 'ProcessGroupNCCL.hpp'))) return null;
  const nvidia = info.source === 'python' ? join(info.root, '..', 'nvidia') : null;
  const cudaHome = process.env.CUDA_HOME ?? '/usr/local/cuda';
  const dirs = [
    ...(nvidia ? [join(nvidia, 'nccl/include'), join(nvidia, 'cuda_runtime/include')] : []),
    join(cudaHome, 'include'),
    '/usr/include',
  ].filter((d) => existsSync(d));
  const nccl = firstWith(dirs, 'nccl.h'),
    cudart = firstWith(dirs, 'cuda_runtime_api.h');
  return nccl && cudart ? [...new Set([nccl, cudart])] : null;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const info = findLibtorch();
  const field = process.argv[2] ?? 'describe';
  if (!info) {
    if (field === 'describe') console.log('none');
    else {
      console.error('libtorch not found: set LIBTORCH, or `apt-get install libtorch-dev libopenblas0-pthread`');
      process.exit(1);
    }
  } else if (field === 'include') console.log(info.include.join(' '));
  else if (field === 'libdir') console.log(info.libdir);
  else if (field === 'libs')
    console.log(
      libsIn(info.libdir)
        .map((l) => `-l${l}`)
        .join(' '),
    );
  else if (field === 'abi') console.log(cxx11Abi(info));
  else if (field === 'cuda') console.log(libsIn(info.libdir).includes('torch_cuda') ? 1 : 0);
  else if (field === 'c10d') console.log(c10d(info));
  else if (field === 'nccl') console.log(ncclIncludes(info) ? 1 : 0);
  else if (field === 'nccl-include') console.log((ncclIncludes(info) ?? []).join(' '));
  else
    console.log(
      `${info.source} ${info.libdir}${c10d(info) ? ', c10d/Gloo' : ', no c10d (Gloo headers missing)'}${ncclIncludes(info) ? ', NCCL' : ''}`,
    );
}
