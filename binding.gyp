{
  "targets": [
    {
      "target_name": "linux_mount",
      "sources": ["runtime-agent/native/linux-mount.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror"]
    }
  ]
}
