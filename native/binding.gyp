# The krsi native binding: node-addon-api (C++17) over the system libbpf.
# Built by `npm ci` (package.json "install") into build/Release/krsi_native.node.
{
  "targets": [
    {
      "target_name": "krsi_native",
      "sources": [
        "src/addon.cc",
        "src/object.cc",
        "src/program.cc",
        "src/map.cc",
        "src/link.cc",
        "src/ringbuf.cc",
        "src/perfbuf.cc",
        "src/batch.cc",
        "src/system.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../bpf/include"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS"
      ],
      "cflags": [
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra",
        "<!@(pkg-config --cflags libbpf)"
      ],
      "cflags_cc!": ["-std=gnu++17"],
      "cflags_cc": [
        "-std=c++17",
        "-fvisibility=hidden"
      ],
      "libraries": [
        "<!@(pkg-config --libs libbpf)"
      ]
    }
  ]
}
