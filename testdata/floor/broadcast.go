// The least Go program that broadcasts one message, built as bus is: the
// bus file read and the same semop groups as proto.go's Broadcast (those of
// testdata/yardstick.c's broadcast) through package syscall, its arguments
// from package os (without it, only /proc has them), and nothing else: no
// checks but failing, no timeout but the re-release's, no error words. Beside oneshot.go (the least Go
// program) it shows what any Go one-shot broadcast costs: os's start and the
// round trip with a listener. BenchmarkOneShot builds and times it. amd64
// and the other architectures with direct System V calls.
//
//	broadcast PATH MESSAGE
package main

import (
	"os"
	"syscall"
	"unsafe"
)

const (
	semS, semW, semX, semQ, semN = 0, 1, 2, 3, 4
	undo                         = 0x1000
	setval                       = 16
)

type sembuf struct {
	num uint16
	op  int16
	flg int16
}

func main() {
	argv := os.Args[1:]
	var buf [64]byte
	fd, err := syscall.Open(argv[0], syscall.O_RDONLY, 0)
	if err != nil {
		syscall.Exit(1)
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
	sem, _, e := syscall.RawSyscall(syscall.SYS_SEMGET, uintptr(keys[0]), 5, 0o600)
	shm, _, e2 := syscall.RawSyscall(syscall.SYS_SHMGET, uintptr(keys[1]), 2048, 0o600)
	if e != 0 || e2 != 0 {
		syscall.Exit(1)
	}
	mem, _, e := syscall.RawSyscall(syscall.SYS_SHMAT, shm, 0, 0)
	if e != 0 {
		syscall.Exit(1)
	}
	group := func(ops []sembuf, ns int64) syscall.Errno {
		var ts *syscall.Timespec
		if ns > 0 {
			ts = &syscall.Timespec{Nsec: ns}
		}
		_, _, e := syscall.Syscall6(syscall.SYS_SEMTIMEDOP, sem, uintptr(unsafe.Pointer(&ops[0])), uintptr(len(ops)), uintptr(unsafe.Pointer(ts)), 0, 0)
		return e
	}
	setQ0 := func() { syscall.RawSyscall6(syscall.SYS_SEMCTL, sem, semQ, setval, 0, 0, 0) }
	for group([]sembuf{{semX, -1, undo}, {semW, 0, 0}}, 0) == syscall.EINTR {
	}
	for group([]sembuf{{semW, 0, 0}, {semQ, 1, 0}, {semN, 1, undo}}, 0) == syscall.EINTR {
	}
	msg := argv[1]
	copy(unsafe.Slice(*(**byte)(unsafe.Pointer(&mem)), 2048), msg+"\x00")
	setQ0()
	for wait := int64(100000); ; wait = min(wait*2, 16000000) {
		switch group([]sembuf{{semS, 0, 0}, {semN, -1, undo}, {semX, 1, undo}}, wait) {
		case 0:
			return
		case syscall.EAGAIN:
			setQ0() // a listener that armed late
		}
	}
}
