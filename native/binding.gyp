{
  "targets": [
    {
      "target_name": "mumu_torch",
      "sources": ["src/tensor.cc", "src/ops.cc", "src/nn.cc", "src/optim.cc", "src/allocator.cc", "src/distributed.cc", "src/addon.cc"],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node ../scripts/find-libtorch.mjs include)",
        "<!@(node ../scripts/find-libtorch.mjs nccl-include)"
      ],
      "libraries": [
        "-L<!(node ../scripts/find-libtorch.mjs libdir)",
        "-Wl,--no-as-needed",
        "<!@(node ../scripts/find-libtorch.mjs libs)",
        "-Wl,--as-needed",
        "-Wl,-rpath,<!(node ../scripts/find-libtorch.mjs libdir)"
      ],
      "defines": [
        "NAPI_EXPERIMENTAL",
        "NAPI_CPP_EXCEPTIONS",
        "_GLIBCXX_USE_CXX11_ABI=<!(node ../scripts/find-libtorch.mjs abi)",
        "MUMU_WITH_CUDA=<!(node ../scripts/find-libtorch.mjs cuda)",
        "MUMU_WITH_C10D=<!(node ../scripts/find-libtorch.mjs c10d)",
        "MUMU_WITH_NCCL=<!(node ../scripts/find-libtorch.mjs nccl)",
        "USE_C10D_GLOO"
      ],
      "conditions": [
        ["<!(node ../scripts/find-libtorch.mjs nccl)==1", { "sources": ["src/distributed_nccl.cc"] }]
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"]
    }
  ]
}
