{
  "targets": [
    {
      "target_name": "mumu_torch",
      "sources": ["src/tensor.cc", "src/ops.cc", "src/nn.cc", "src/optim.cc", "src/allocator.cc", "src/addon.cc"],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node ../scripts/find-libtorch.mjs include)"
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
        "MUMU_WITH_CUDA=<!(node ../scripts/find-libtorch.mjs cuda)"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"]
    }
  ]
}
