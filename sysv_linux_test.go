package main

// The raw System V calls (sysv_linux.go): semtimedop with and without a
// timeout, through the scheduler and raw, by the 32-bit architectures'
// semtimedop_time64 and by their old call with its 32-bit timespec (the
// fallback for kernels before 5.1), which must both time out when told and
// not before.

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

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
