// The least a Go program can be, built as bus is: one write through package
// syscall. Its start and exit are the runtime's (threads, signal handlers,
// heap, the cgroup probe): the floor under any Go one-shot. BenchmarkOneShot
// builds and times it.
package main

import "syscall"

func main() { syscall.Write(1, []byte("")) }
