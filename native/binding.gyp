{
  "targets": [
    {
      "target_name": "svnic_native",
      "sources": ["svnic_native.cc"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"]
    }
  ]
}
