package main

// Raw System V IPC calls, named after the syscalls and returning a bare
// syscall.Errno; proto.go and busfile.go add what was being done and to
// which bus.
//
// Go's syscall package names the direct call numbers on only some
// architectures, so the numbers live here, in one table per GOARCH.
// Where each fact comes from:
//   - call numbers: the kernel's syscall table named at each row below
//     (arm's and mips n64's re-read for this file in Linux 6.x: both map
//     semctl and shmctl to the old-style sys_old_semctl/sys_old_shmctl);
//   - ipc() and its arguments: ipc/syscall.c (ksys_ipc, compat_ksys_ipc,
//     and s390's five-argument sys_s390_ipc);
//   - IPC_64: the old-style entry points (sys_old_semctl, sys_old_shmctl,
//     and everything behind ipc()) strip it and use the 64-bit layouts only
//     when it is set (ipc/util.h ipc_parse_version); the new-style semctl
//     and shmctl of amd64 and the asm-generic table reject it (EINVAL);
//   - SETVAL: ipc/sem.c ksys_semctl, "big-endian 64bit";
//   - timespecs and layouts: the uapi sembuf.h, shmbuf.h and ipcbuf.h
//     headers, and the syscall tables (arm's 312 is semtimedop_time32).
//
// Every row was run (arch_test.go): natively for amd64 and 386 (on an
// x86_64 kernel), under qemu-user 7.2 for arm, arm64, riscv64, loong64,
// mips, mipsle, mips64le, ppc64le and s390x; only the big-endian mips64
// and ppc64, which share their rows with mips64le and s390x, were not.
// Where a kernel has direct calls only since 5.1 (386, mips, ppc64,
// s390x), the ipc() multiplexer is used, which every kernel has.
//
// Pointers reach the kernel only as unsafe.Pointer values converted to
// uintptr in the very call to syscall.Syscall6 or RawSyscall6 (nosplit):
// a uintptr made earlier and handed through a Go function would not follow
// its object when the goroutine's stack is moved, and the kernel would
// write into the old stack (go doc unsafe.Pointer, rule 4).

import (
	"runtime"
	"syscall"
	"unsafe"
)

// sembuf is struct sembuf: the same 6-byte layout on every architecture
// (include/uapi/linux/sem.h).
type sembuf struct {
	num uint16
	op  int16
	flg int16
}

// include/uapi/linux/ipc.h, sem.h, shm.h.
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
	semSetall = 17
	shmRdonly = 0o10000
)

// ipc() call numbers (include/linux/ipc.h, as ipc/syscall.c reads them).
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

	// semtimedop64: semtimedop_time64 (Linux 5.1), on 32-bit architectures
	// only; 0 where semtimedop's timespec is 64-bit already.
	semtimedop64 uintptr

	ipc64 uintptr // or'ed into semctl/shmctl commands: 0x100 where the kernel wants IPC_64
	// setvalShift: 64-bit big-endian kernels read SETVAL's int from the
	// high half of the union word (ipc/sem.c, "big-endian 64bit").
	setvalShift uint
}

// abi is the table row of the architecture this binary was built for.
var abi = abiFor(runtime.GOARCH)

func abiFor(goarch string) sysvABI {
	bigEndian64 := uint(0)
	if unsafe.Sizeof(uintptr(0)) == 8 && isBigEndian() {
		bigEndian64 = 32
	}
	switch goarch {
	case "amd64": // arch/x86/entry/syscalls/syscall_64.tbl: new-style ctl calls, IPC_64 is EINVAL
		return sysvABI{semget: 64, semctl: 66, semtimedop: 220, shmget: 29, shmat: 30, shmctl: 31, shmdt: 67}
	case "arm64", "riscv64", "loong64": // include/uapi/asm-generic/unistd.h: new-style, no IPC_64
		return sysvABI{semget: 190, semctl: 191, semtimedop: 192, shmget: 194, shmat: 196, shmctl: 195, shmdt: 197}
	case "arm": // arch/arm/tools/syscall.tbl (EABI): 300/308 are sys_old_semctl/shmctl (IPC_64); 312 is semtimedop_time32
		return sysvABI{semget: 299, semctl: 300, semtimedop: 312, semtimedop64: 420, shmget: 307, shmat: 305, shmctl: 308, shmdt: 306, ipc64: 0x100}
	case "mips64", "mips64le": // arch/mips/kernel/syscalls/syscall_n64.tbl (5000+): 5064/5030 are sys_old_semctl/shmctl
		return sysvABI{semget: 5062, semctl: 5064, semtimedop: 5214, shmget: 5028, shmat: 5029, shmctl: 5030, shmdt: 5065, ipc64: 0x100, setvalShift: bigEndian64}
	case "mips", "mipsle": // syscall_o32.tbl (4000+): ipc is 4117, semtimedop_time64 4420
		return sysvABI{ipc: 4117, semtimedop64: 4420, ipc64: 0x100}
	case "386": // syscall_32.tbl: ipc is 117, semtimedop_time64 420
		return sysvABI{ipc: 117, semtimedop64: 420, ipc64: 0x100}
	case "ppc64", "ppc64le", "s390x": // syscall.tbl (powerpc, s390): ipc is 117
		return sysvABI{ipc: 117, ipc64: 0x100, setvalShift: bigEndian64}
	}
	// Go has no other Linux GOARCH today; a new one must be looked up, not guessed.
	panic("bus: System V IPC calls are not known for GOARCH " + goarch)
}

func isBigEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}

// ipc is the multiplexer, for the calls that pass it no pointer but ptr.
// (shmat and semtimedop pass pointers in third and fifth: they call
// syscall.Syscall6 themselves, so that the conversions stay in the call.)
func ipc(call, first, second, third uintptr, ptr unsafe.Pointer) (uintptr, syscall.Errno) {
	r, _, e := syscall.Syscall6(abi.ipc, call, first, second, third, uintptr(ptr), 0)
	return r, e
}

func semget(key int32, nsems, flags int) (int, syscall.Errno) {
	if abi.ipc != 0 {
		r, e := ipc(ipcSemget, uintptr(key), uintptr(nsems), uintptr(flags), nil)
		return int(r), e
	}
	r, _, e := syscall.RawSyscall(abi.semget, uintptr(key), uintptr(nsems), uintptr(flags))
	return int(r), e
}

// timespec is struct __kernel_timespec, two 64-bit fields on every
// architecture: what the 64-bit architectures' semtimedop and ipc() take,
// and the 32-bit ones' semtimedop_time64.
type timespec struct{ sec, nsec int64 }

// timespec32 is old_timespec32, for the 32-bit architectures' old calls
// (arm's 312 is semtimedop_time32; ipc(SEMTIMEDOP) reads one on a 32-bit
// kernel and in a 64-bit kernel's compat ipc). A kernel built without
// CONFIG_COMPAT_32BIT_TIME has no such calls (ENOSYS), one before 5.1 has
// no semtimedop_time64: a 32-bit bus tries the time64 call first, and
// falls back to the old one for good if it is missing.
type timespec32 [2]int32

// time32: semtimedop_time64 was ENOSYS; the old call is used from then on.
var time32 bool

// old returns t as the old calls read it: in t32, or nil for no timeout.
func (t32 *timespec32) old(t *timespec) unsafe.Pointer {
	if t == nil {
		return nil
	}
	*t32 = timespec32{int32(t.sec), int32(t.nsec)} // tv_sec is at most 2^31-1: see Bus.semop
	return unsafe.Pointer(t32)
}

// semtimedop blocks (in a syscall the Go scheduler knows about) until the
// operations apply, the timeout runs out (EAGAIN) or a signal arrives (EINTR).
// A nil timeout waits forever.
func semtimedop(id int, ops []sembuf, timeout *timespec) syscall.Errno {
	if abi.semtimedop64 != 0 {
		if !time32 {
			_, _, e := syscall.Syscall6(abi.semtimedop64, uintptr(id), uintptr(unsafe.Pointer(&ops[0])), uintptr(len(ops)),
				uintptr(unsafe.Pointer(timeout)), 0, 0)
			if e != syscall.ENOSYS {
				return e
			}
			time32 = true
		}
		var t32 timespec32
		return semtimedopOld(false, id, ops, t32.old(timeout))
	}
	return semtimedopOld(false, id, ops, unsafe.Pointer(timeout))
}

// semtimedopRaw is semtimedop without telling the Go scheduler: the thread
// keeps its P while it blocks. For a process whose only work is this wait
// (a listener printing to stdout, a broadcaster), that halves its context
// switches per message; see Bus.raw for why it stays safe.
func semtimedopRaw(id int, ops []sembuf, timeout *timespec) syscall.Errno {
	if abi.semtimedop64 != 0 {
		if !time32 {
			_, _, e := syscall.RawSyscall6(abi.semtimedop64, uintptr(id), uintptr(unsafe.Pointer(&ops[0])), uintptr(len(ops)),
				uintptr(unsafe.Pointer(timeout)), 0, 0)
			if e != syscall.ENOSYS {
				return e
			}
			time32 = true
		}
		var t32 timespec32
		return semtimedopOld(true, id, ops, t32.old(timeout))
	}
	return semtimedopOld(true, id, ops, unsafe.Pointer(timeout))
}

// semtimedopOld is the architecture's semtimedop or ipc(SEMTIMEDOP), with
// the timeout in the layout it reads (timespec, or timespec32 on 32-bit).
func semtimedopOld(raw bool, id int, ops []sembuf, timeout unsafe.Pointer) syscall.Errno {
	var e syscall.Errno
	switch {
	case abi.ipc != 0 && raw:
		// s390x's ipc takes five arguments and reads the timeout from
		// "third" where the others read "fifth": pass it in both, which
		// every kernel accepts (the others ignore third here).
		_, _, e = syscall.RawSyscall6(abi.ipc, ipcSemtimedop, uintptr(id), uintptr(len(ops)),
			uintptr(timeout), uintptr(unsafe.Pointer(&ops[0])), uintptr(timeout))
	case abi.ipc != 0:
		_, _, e = syscall.Syscall6(abi.ipc, ipcSemtimedop, uintptr(id), uintptr(len(ops)),
			uintptr(timeout), uintptr(unsafe.Pointer(&ops[0])), uintptr(timeout))
	case raw:
		_, _, e = syscall.RawSyscall6(abi.semtimedop, uintptr(id), uintptr(unsafe.Pointer(&ops[0])), uintptr(len(ops)),
			uintptr(timeout), 0, 0)
	default:
		_, _, e = syscall.Syscall6(abi.semtimedop, uintptr(id), uintptr(unsafe.Pointer(&ops[0])), uintptr(len(ops)),
			uintptr(timeout), 0, 0)
	}
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
		// ipc() reads the union from memory, even when it is unused (a
		// NULL ptr is EINVAL).
		r, e := ipc(ipcSemctl, uintptr(id), uintptr(num), uintptr(cmd)|abi.ipc64, unsafe.Pointer(&arg))
		return int(r), e
	}
	r, _, e := syscall.RawSyscall6(abi.semctl, uintptr(id), uintptr(num), uintptr(cmd)|abi.ipc64, arg, 0, 0)
	return int(r), e
}

// ipcBuf is big enough for semid64_ds and shmid64_ds on every architecture
// (at most 112 bytes: uapi sembuf.h and shmbuf.h), and 8-byte aligned, so
// that word's 32-bit accesses are aligned (mips faults on unaligned ones).
// Only struct ipc64_perm at its start is used, whose layout is the same
// everywhere (uapi ipcbuf.h): key @0, uid @4, gid @8, cuid @12, cgid @16,
// mode @20.
type ipcBuf [16]uint64

// semctlBuf is semctl with a buffer (IPC_STAT, IPC_SET; GETALL and SETALL,
// whose unsigned shorts ushort and setUshort read and write).
func semctlBuf(id, cmd int, buf *ipcBuf) syscall.Errno {
	if abi.ipc != 0 {
		p := unsafe.Pointer(buf) // the union word ipc() reads: the buffer's address
		_, e := ipc(ipcSemctl, uintptr(id), 0, uintptr(cmd)|abi.ipc64, unsafe.Pointer(&p))
		return e
	}
	_, _, e := syscall.RawSyscall6(abi.semctl, uintptr(id), 0, uintptr(cmd)|abi.ipc64, uintptr(unsafe.Pointer(buf)), 0, 0)
	return e
}

func shmget(key int32, size, flags int) (int, syscall.Errno) {
	if abi.ipc != 0 {
		r, e := ipc(ipcShmget, uintptr(key), uintptr(size), uintptr(flags), nil)
		return int(r), e
	}
	r, _, e := syscall.RawSyscall(abi.shmget, uintptr(key), uintptr(size), uintptr(flags))
	return int(r), e
}

// shmat attaches size bytes of segment id where the kernel chooses.
func shmat(id, flags, size int) ([]byte, syscall.Errno) {
	var addr unsafe.Pointer
	if abi.ipc != 0 {
		// ipc() stores the address in the pointer-sized word that third
		// points to (a compat_ulong_t in a 64-bit kernel's compat ipc:
		// still our pointer's size).
		_, _, e := syscall.RawSyscall6(abi.ipc, ipcShmat, uintptr(id), uintptr(flags), uintptr(unsafe.Pointer(&addr)), 0, 0)
		if e != 0 {
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
		_, e := ipc(ipcShmdt, 0, 0, 0, p)
		return e
	}
	_, _, e := syscall.RawSyscall(abi.shmdt, uintptr(p), 0, 0)
	return e
}

func shmctl(id, cmd int, buf *ipcBuf) syscall.Errno {
	if abi.ipc != 0 {
		_, e := ipc(ipcShmctl, uintptr(id), uintptr(cmd)|abi.ipc64, 0, unsafe.Pointer(buf))
		return e
	}
	_, _, e := syscall.RawSyscall(abi.shmctl, uintptr(id), uintptr(cmd)|abi.ipc64, uintptr(unsafe.Pointer(buf)))
	return e
}

// word is the native-order 32-bit word at byte offset off of an
// IPC_STAT/IPC_SET buffer, which holds struct ipc64_perm at its start.
func (b *ipcBuf) word(off uintptr) *uint32  { return (*uint32)(unsafe.Add(unsafe.Pointer(b), off)) }
func (b *ipcBuf) ushort(i int) int          { return int(*(*uint16)(unsafe.Add(unsafe.Pointer(b), 2*i))) }
func (b *ipcBuf) setUshort(i int, v uint16) { *(*uint16)(unsafe.Add(unsafe.Pointer(b), 2*i)) = v }
func (b *ipcBuf) uid() uint32               { return *b.word(4) }
func (b *ipcBuf) gid() uint32               { return *b.word(8) }
func (b *ipcBuf) setOwner(uid, gid uint32) {
	*b.word(4), *b.word(8) = uid, gid
}

// mode is a u32 on most architectures and a u16 followed by padding on 386
// and arm (and qemu reads it as 16 bits on s390x): writing mode|mode<<16
// sets it right on all of them (the uapi ipcbuf.h of each; qemu's s390x
// target_ipc_perm).
func (b *ipcBuf) mode() uint32 { v := *b.word(20); return (v | v>>16) & 0o777 }
func (b *ipcBuf) setMode(m uint32) {
	m &= 0o777
	*b.word(20) = m | m<<16
}
