// The least Go listener, built as bus is: `yardstick listen` (testdata/
// yardstick.c) written in Go, the same semop groups as raw syscalls on one
// P (as bus's printing listener runs), no clock, no timeout, no output but
// the count at the end. What is left over the C listener is the Go
// runtime's presence: its other threads (sysmon polls every 10 ms while a
// raw wait holds the P, and signals the wait to preempt it), and the memory
// a Go process touches on each wake-up. BenchmarkYardstick builds it and
// times it with the yardstick's writer. amd64 and the other architectures
// with direct System V calls.
//
//	listener PATH    receive until the message "0 stop", then print how
//	                 many came before it
package main

import (
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

const (
	semS, semW, semX, semQ, semN = 0, 1, 2, 3, 4
	undo                         = 0x1000
	shmRdonly                    = 0x1000
)

type sembuf struct {
	num uint16
	op  int16
	flg int16
}

var sem uintptr

// group applies one atomic semop group, again after a signal.
func group(ops []sembuf) {
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_SEMTIMEDOP, sem, uintptr(unsafe.Pointer(&ops[0])), uintptr(len(ops)), 0, 0, 0)
		if e == 0 {
			return
		}
		if e != syscall.EINTR {
			os.Exit(1)
		}
	}
}

func main() {
	runtime.GOMAXPROCS(1)
	var buf [64]byte
	fd, err := syscall.Open(os.Args[1], syscall.O_RDONLY, 0)
	if err != nil {
		os.Exit(1)
	}
	n, _ := syscall.Read(fd, buf[:])
	syscall.Close(fd)
	var keys [2]int
	k := 0
	for _, c := range buf[:n] {
		if c == '\n' {
			k++
		} else if k < 2 {
			keys[k] = keys[k]*10 + int(c-'0')
		}
	}
	id, _, e1 := syscall.RawSyscall(syscall.SYS_SEMGET, uintptr(keys[0]), 5, 0o600)
	shm, _, e2 := syscall.RawSyscall(syscall.SYS_SHMGET, uintptr(keys[1]), 2048, 0o400)
	mem, _, e3 := syscall.RawSyscall(syscall.SYS_SHMAT, shm, 0, shmRdonly)
	if e1 != 0 || e2 != 0 || e3 != 0 {
		os.Exit(1)
	}
	sem = id
	seg := unsafe.Slice(*(**byte)(unsafe.Pointer(&mem)), 2048)
	join := []sembuf{{semX, -1, 0}, {semX, 1, 0}, {semW, 0, 0}, {semS, 1, undo}, {semQ, 1, undo}}
	released := []sembuf{{semQ, 0, 0}, {semW, 1, undo}}
	countOut := []sembuf{{semS, -1, undo}}
	rearm := []sembuf{{semN, 0, 0}, {semS, 1, undo}, {semQ, 1, undo}, {semW, -1, undo}}
	leave := []sembuf{{semS, -1, undo}, {semW, -1, undo}}
	var msg [2048]byte
	count := 0
	group(join)
	for {
		group(released)
		copy(msg[:], seg)
		msg[len(msg)-1] = 0 // never trust the segment
		if string(msg[:7]) == "0 stop\x00" {
			group(leave)
			os.Stdout.WriteString(strconv.Itoa(count) + "\n")
			return
		}
		count++
		group(countOut)
		group(rearm)
	}
}
