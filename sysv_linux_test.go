package main

// The raw System V calls (sysv_linux.go): semtimedop with and without a
// timeout, through the scheduler and raw, by the 32-bit architectures'
// semtimedop_time64 and by their old call with its 32-bit timespec (the
// fallback for kernels before 5.1), which must both time out when told and
// not before; and rt_sigprocmask, whose SIG_BLOCK and sigset size differ
// on mips.

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSigprocmask: rtSigprocmask blocks SIGURG on this thread alone (as
// the kernel shows it in SigBlk), and puts the old mask back.
func TestSigprocmask(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	blocked := func() uint64 {
		t.Helper()
		data, err := os.ReadFile("/proc/thread-self/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "SigBlk:"); ok {
				m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil {
					t.Fatalf("SigBlk %q: %v", v, err)
				}
				return m
			}
		}
		t.Fatal("no SigBlk in /proc/thread-self/status")
		return 0
	}
	urg := uint64(1) << (syscall.SIGURG - 1)
	before := blocked()
	if before&urg != 0 {
		t.Fatalf("SIGURG blocked already: SigBlk %x", before)
	}
	var old sigset
	if e := rtSigprocmask(sigBlock, &urgSet, &old); e != 0 {
		t.Fatalf("rt_sigprocmask(SIG_BLOCK): %v", e)
	}
	// Under qemu-user, /proc shows the host's thread, and the host's
	// number for SIGURG (23; mips's is 21).
	if got := blocked(); got != before|urg && !(os.Getenv("BUS_TEST_EXEC_PREFIX") != "" && got == before|1<<22) {
		t.Errorf("after SIG_BLOCK of SIGURG: SigBlk %x, want %x", got, before|urg)
	}
	if old[0] != uintptr(before) { // signals 1 to 32 or 64: the first word
		t.Errorf("old mask %x, want %x", old[0], before)
	}
	if e := rtSigprocmask(sigSetmask, &old, nil); e != 0 {
		t.Fatalf("rt_sigprocmask(SIG_SETMASK): %v", e)
	}
	if got := blocked(); got != before {
		t.Errorf("after SIG_SETMASK of the old mask: SigBlk %x, want %x", got, before)
	}
}

func TestSemtimedopTimes(t *testing.T) {
	path := newBus(t)
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	saved := time32
	defer func() { time32 = saved }()
	try := func(raw bool, ops []sembuf, ts *timespec) syscall.Errno {
		for {
			var e syscall.Errno
			if raw {
				e = semtimedopRaw(b.semid, ops, ts)
			} else {
				e = semtimedop(b.semid, ops, ts)
			}
			if e != syscall.EINTR { // the runtime's signals
				return e
			}
		}
	}
	waitX0 := []sembuf{{semX, 0, 0}}                 // X is 1: never applies
	checkX1 := []sembuf{{semX, -1, 0}, {semX, 1, 0}} // applies at once, changes nothing
	for _, old := range []bool{false, true} {
		time32 = old
		for _, raw := range []bool{false, true} {
			const wait = 5 * time.Millisecond // under sysmon's 10 ms: a raw wait is not preempted
			ts := timespec{0, int64(wait)}
			start := time.Now()
			if e := try(raw, waitX0, &ts); e != syscall.EAGAIN {
				t.Fatalf("old call %v, raw %v: a wait that cannot apply: %v, want EAGAIN (timed out)", old, raw, e)
			}
			if took := time.Since(start); took < wait*3/4 {
				t.Errorf("old call %v, raw %v: a %v timeout ended after %v: the timespec was misread", old, raw, wait, took)
			}
			ts = timespec{1, 0}
			if e := try(raw, checkX1, &ts); e != 0 {
				t.Fatalf("old call %v, raw %v: a wait that applies at once, with a timeout: %v", old, raw, e)
			}
			if e := try(raw, checkX1, nil); e != 0 {
				t.Fatalf("old call %v, raw %v: a wait that applies at once, without a timeout: %v", old, raw, e)
			}
		}
		// Every kernel the suite runs on (5.10 and later) has
		// semtimedop_time64: the old call must not have been fallen back to
		// (qemu-user, which translates the calls itself, aside).
		if !old && time32 && abi.semtimedop64 != 0 && os.Getenv("BUS_TEST_EXEC_PREFIX") == "" {
			t.Errorf("%s: semtimedop_time64 (%d) was ENOSYS: the old 32-bit call is in use", runtime.GOARCH, abi.semtimedop64)
		}
	}
}
