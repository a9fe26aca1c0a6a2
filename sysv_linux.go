package main

// Raw System V IPC calls, named after the syscalls and returning a bare
// syscall.Errno; proto.go adds what was being done and to which bus.
//
// Go's syscall package names the direct call numbers on only some
// architectures, so the numbers live here, in one table per GOARCH. Where
// each fact comes from: ../shared/design/sysv-abi.md, which gathered them from
// the kernel's syscall tables, ipc/syscall.c and the uapi headers, and checked
// them by probes. Where a kernel has direct calls only since 5.1 (386, mips,
// ppc64, s390x), the ipc() multiplexer is used, which every kernel has.

import (
	"runtime"
	"syscall"
	"unsafe"
)

// sembuf is struct sembuf: the same 6-byte layout on every architecture.
type sembuf struct {
	num uint16
	op  int16
	flg int16
}

const (
	ipcCreat  = 0o1000
	ipcExcl   = 0o2000
	ipcNowait = 0o4000
	ipcRmid   = 0
	ipcSet    = 1
	ipcStat   = 2
	semUndo   = 0x1000
	semGetpid = 11
	semGetval = 12
	semGetall = 13
	semGetn   = 14 // GETNCNT
	semGetz   = 15 // GETZCNT
	semSetval = 16
	shmRdonly = 0o10000
)

// ipc() call numbers (ipc/syscall.c).
const (
	ipcSemop      = 1
	ipcSemget     = 2
	ipcSemctl     = 3
	ipcSemtimedop = 4
	ipcShmat      = 21
	ipcShmdt      = 22
	ipcShmget     = 23
	ipcShmctl     = 24
)

// sysvABI says how to reach the calls on one architecture.
type sysvABI struct {
	ipc uintptr // the ipc() multiplexer's number; 0: direct calls below

	semget, semctl, semtimedop, shmget, shmat, shmctl, shmdt uintptr

	ipc64 uintptr // or'ed into semctl/shmctl commands: 0x100 where the kernel wants IPC_64
	// setvalShift: 64-bit big-endian kernels read SETVAL's int from the
	// high half of the union word (ipc/sem.c, "big-endian 64bit").
	setvalShift uint
}

// abi is the table row of the architecture this binary was built for.
var abi = func() sysvABI {
	bigEndian64 := uint(0)
	if unsafe.Sizeof(uintptr(0)) == 8 && isBigEndian() {
		bigEndian64 = 32
	}
	switch runtime.GOARCH {
	case "amd64": // arch/x86/entry/syscalls/syscall_64.tbl; IPC_64 must not be set
		return sysvABI{semget: 64, semctl: 66, semtimedop: 220, shmget: 29, shmat: 30, shmctl: 31, shmdt: 67}
	case "arm64", "riscv64", "loong64": // include/uapi/asm-generic/unistd.h
		return sysvABI{semget: 190, semctl: 191, semtimedop: 192, shmget: 194, shmat: 196, shmctl: 195, shmdt: 197}
	case "arm": // arch/arm/tools/syscall.tbl (EABI); 312 takes a 32-bit timespec; 300/308 want IPC_64
		return sysvABI{semget: 299, semctl: 300, semtimedop: 312, shmget: 307, shmat: 305, shmctl: 308, shmdt: 306, ipc64: 0x100}
	case "mips64", "mips64le": // arch/mips/kernel/syscalls/syscall_n64.tbl
		return sysvABI{semget: 5062, semctl: 5064, semtimedop: 5214, shmget: 5028, shmat: 5029, shmctl: 5030, shmdt: 5065, ipc64: 0x100, setvalShift: bigEndian64}
	case "mips", "mipsle": // o32: ipc() is 4117
		return sysvABI{ipc: 4117, ipc64: 0x100}
	default: // 386, ppc64, ppc64le, s390x: ipc() is 117
		return sysvABI{ipc: 117, ipc64: 0x100, setvalShift: bigEndian64}
	}
}()

func isBigEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}

// ipc is the multiplexer. s390x's takes five arguments and reads "third"
// where the others read "fifth" (semtimedop's timeout): callers pass the
// timeout in both, which every kernel accepts.
func ipc(call, first, second, third uintptr, ptr unsafe.Pointer, fifth uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.Syscall6(abi.ipc, call, first, second, third, uintptr(ptr), fifth)
	return r, e
}

func semget(key int32, nsems, flags int) (int, syscall.Errno) {
	if abi.ipc != 0 {
		r, e := ipc(ipcSemget, uintptr(key), uintptr(nsems), uintptr(flags), nil, 0)
		return int(r), e
	}
	r, _, e := syscall.RawSyscall(abi.semget, uintptr(key), uintptr(nsems), uintptr(flags))
	return int(r), e
}

// timespec is the kernel's timespec for these calls: two longs (the old
// 32-bit one on 32-bit architectures, which their semtimedop and ipc() take).
type timespec [2]uintptr

// semtimedop blocks (in a syscall the Go scheduler knows about) until the
// operations apply, the timeout runs out (EAGAIN) or a signal arrives (EINTR).
// A nil timeout waits forever.
func semtimedop(id int, ops []sembuf, timeout *timespec) syscall.Errno {
	p := unsafe.Pointer(&ops[0])
	if abi.ipc != 0 {
		t := uintptr(unsafe.Pointer(timeout))
		_, e := ipc(ipcSemtimedop, uintptr(id), uintptr(len(ops)), t, p, t)
		return e
	}
	_, _, e := syscall.Syscall6(abi.semtimedop, uintptr(id), uintptr(p), uintptr(len(ops)), uintptr(unsafe.Pointer(timeout)), 0, 0)
	return e
}

// semctl with an integer argument (GETVAL, GETNCNT, GETZCNT, GETPID, IPC_RMID)
// or SETVAL's value.
func semctl(id, num, cmd int, val int) (int, syscall.Errno) {
	arg := uintptr(val)
	if cmd == semSetval {
		arg <<= abi.setvalShift
	}
	if abi.ipc != 0 {
		// ipc() reads the union from memory, even when it is unused.
		r, e := ipc(ipcSemctl, uintptr(id), uintptr(num), uintptr(cmd)|abi.ipc64, unsafe.Pointer(&arg), 0)
		return int(r), e
	}
	r, _, e := syscall.RawSyscall6(abi.semctl, uintptr(id), uintptr(num), uintptr(cmd)|abi.ipc64, arg, 0, 0)
	return int(r), e
}

// ipcBuf is big enough for semid64_ds and shmid64_ds on every architecture.
// Only struct ipc64_perm at its start is used, whose layout is the same
// everywhere: key @0, uid @4, gid @8, cuid @12, cgid @16, mode @20.
type ipcBuf [128]byte

// semctlBuf is semctl with a buffer (IPC_STAT, IPC_SET).
func semctlBuf(id, cmd int, buf *ipcBuf) syscall.Errno {
	p := unsafe.Pointer(buf)
	if abi.ipc != 0 {
		_, e := ipc(ipcSemctl, uintptr(id), 0, uintptr(cmd)|abi.ipc64, unsafe.Pointer(&p), 0)
		return e
	}
	_, _, e := syscall.RawSyscall6(abi.semctl, uintptr(id), 0, uintptr(cmd)|abi.ipc64, uintptr(p), 0, 0)
	return e
}

func shmget(key int32, size, flags int) (int, syscall.Errno) {
	if abi.ipc != 0 {
		r, e := ipc(ipcShmget, uintptr(key), uintptr(size), uintptr(flags), nil, 0)
		return int(r), e
	}
	r, _, e := syscall.RawSyscall(abi.shmget, uintptr(key), uintptr(size), uintptr(flags))
	return int(r), e
}

// shmat attaches size bytes of segment id where the kernel chooses.
func shmat(id, flags, size int) ([]byte, syscall.Errno) {
	var addr unsafe.Pointer
	if abi.ipc != 0 {
		// ipc() stores the address in a word we give it.
		if _, e := ipc(ipcShmat, uintptr(id), uintptr(flags), uintptr(unsafe.Pointer(&addr)), nil, 0); e != 0 {
			return nil, e
		}
	} else {
		r, _, e := syscall.RawSyscall(abi.shmat, uintptr(id), 0, uintptr(flags))
		if e != 0 {
			return nil, e
		}
		addr = *(*unsafe.Pointer)(unsafe.Pointer(&r))
	}
	return unsafe.Slice((*byte)(addr), size), 0
}

func shmdt(mem []byte) syscall.Errno {
	p := unsafe.Pointer(&mem[0])
	if abi.ipc != 0 {
		_, e := ipc(ipcShmdt, 0, 0, 0, p, 0)
		return e
	}
	_, _, e := syscall.RawSyscall(abi.shmdt, uintptr(p), 0, 0)
	return e
}

func shmctl(id, cmd int, buf *ipcBuf) syscall.Errno {
	p := unsafe.Pointer(buf)
	if abi.ipc != 0 {
		_, e := ipc(ipcShmctl, uintptr(id), uintptr(cmd)|abi.ipc64, 0, p, 0)
		return e
	}
	_, _, e := syscall.RawSyscall(abi.shmctl, uintptr(id), uintptr(cmd)|abi.ipc64, uintptr(p))
	return e
}

// perm reads and writes struct ipc64_perm in an IPC_STAT/IPC_SET buffer.
func (b *ipcBuf) word(off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }
func (b *ipcBuf) uid() uint32          { return *b.word(4) }
func (b *ipcBuf) gid() uint32          { return *b.word(8) }
func (b *ipcBuf) setOwner(uid, gid uint32) {
	*b.word(4), *b.word(8) = uid, gid
}

// mode is a u32 on most architectures and a u16 followed by padding on 386
// and arm (and qemu reads it as 16 bits on s390x): writing mode|mode<<16
// sets it right on all of them (sysv-abi.md, section 4).
func (b *ipcBuf) mode() uint32 { v := *b.word(20); return (v | v>>16) & 0o777 }
func (b *ipcBuf) setMode(m uint32) {
	m &= 0o777
	*b.word(20) = m | m<<16
}

// semtimedopRaw is semtimedop without telling the Go scheduler: the thread
// keeps its P while it blocks. For a process whose only work is this wait
// (a listener printing to stdout, a broadcaster), that halves its context
// switches per message; see Bus.raw for why it stays safe.
func semtimedopRaw(id int, ops []sembuf, timeout *timespec) syscall.Errno {
	p := unsafe.Pointer(&ops[0])
	t := uintptr(unsafe.Pointer(timeout))
	if abi.ipc != 0 {
		_, _, e := syscall.RawSyscall6(abi.ipc, ipcSemtimedop, uintptr(id), uintptr(len(ops)), t, uintptr(p), t)
		return e
	}
	_, _, e := syscall.RawSyscall6(abi.semtimedop, uintptr(id), uintptr(p), uintptr(len(ops)), t, 0, 0)
	return e
}
