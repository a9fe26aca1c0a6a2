package main

// The bus protocol: opening a bus and the race-free broadcast that bus(5)
// describes (the bus file and its administration are busfile.go's).
//
// Why the groups are what they are (each {…} is one atomic semop call):
//   - A listener joins with { X -1, X +1, W 0, S +1, Q +1 } so it never joins
//     inside a writer's round or while a message is being copied (race R3).
//   - It takes W in the same call that lets it through the gate { Q 0, W +1 },
//     so no writer (which waits for W = 0) can touch the segment before the
//     copy is done, even when a dead writer left the gate open.
//   - Having counted out { S -1 }, it waits for the round's end, re-arms
//     and gives W back in one call { N 0, S +1, Q +1, W -1 }: every listener
//     is armed before the next writer can publish (race R1), and it waits
//     for N = 0, never for S = 0, so a fast listener cannot hide the zero
//     from a slow one (R2). One call, not a wait { N 0 } and then the
//     re-arm: nothing happens between the two that matters, as W held
//     keeps N at 0, and the kernel re-arms every waiting listener in the
//     pass that completes the writer's finish. A call less a message
//     (doc/performance, "What was tried": what it saves).
//   - A writer takes X once no listener holds W { X -1, W 0 }, then closes
//     the gate and publishes in one call { W 0, Q +1, N +1 }, and ends the
//     round only when every listener has counted out { S 0, N -1, X +1 }.
//     With a take of { X -1 } alone, joins starved under two or more
//     streaming writers: a join needs X = 1 and W = 0 at once, a finish gives
//     X back while listeners still hold W, and a queued writer took it before
//     the last one re-armed. Linux tries queued multi-semaphore operations in
//     arrival order, so once the take waits for W = 0 too, whatever waited
//     longest, join or writer, goes first when W reaches 0
//     (TestJoinBeforeLaterWriter). Publish keeps its W 0: W can rise between
//     take and publish when a dead writer left the gate open.
//     The first design closed the gate as X is taken ({ X -1, Q +1 }); then every
//     writer that times out waiting for W leaves one more on Q, which no
//     release clears while W is held, until SEMVMX breaks the bus for good
//     (TestGateDoesNotLeak). Closing it in the same call that sees W = 0
//     keeps what the gate is for: no listener passes between that moment
//     and the release, and one let through before holds W, so waits first.
//
// Every adjustment of S, W, X and N, and a listener's arm of Q, is SEM_UNDO,
// so a killed process leaves the bus usable. A writer's gate close is not:
// the next release clears it. SETVAL (Q := 0) clears every process's undo of
// Q, so a released arm is never undone while an unreleased one is.

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Semaphore indices: the order is part of the format.
const (
	semS = iota // registered listeners
	semW        // listeners holding a released message
	semX        // writers' mutex, 1 when free
	semQ        // the gate: armed listeners wait for 0
	semN        // 1 while a writer is between publishing and finishing
	nsems
)

const (
	shmSize    = 2048
	maxMessage = shmSize - 1 // the segment holds the text and its NUL
	maxKey     = 1<<30 - 1
)

// The protocol's semop groups. Package variables, so that the hot loops
// hand the kernel a pointer without allocating.
var (
	opJoin     = []sembuf{{semX, -1, 0}, {semX, 1, 0}, {semW, 0, 0}, {semS, 1, semUndo}, {semQ, 1, semUndo}}
	opReleased = []sembuf{{semQ, 0, 0}, {semW, 1, semUndo}}
	opCountOut = []sembuf{{semS, -1, semUndo}}
	opDropW    = []sembuf{{semW, -1, semUndo}}
	opRearm    = []sembuf{{semN, 0, 0}, {semS, 1, semUndo}, {semQ, 1, semUndo}, {semW, -1, semUndo}}
	opLeave    = []sembuf{{semS, -1, semUndo}, {semW, -1, semUndo}}

	opTake       = []sembuf{{semX, -1, semUndo}, {semW, 0, 0}}
	opTakeNowait = []sembuf{{semX, -1, semUndo | ipcNowait}, {semW, 0, 0}}
	opPublish    = []sembuf{{semW, 0, 0}, {semQ, 1, 0}, {semN, 1, semUndo}}
	opUntake     = []sembuf{{semX, 1, semUndo}}
	opFinish     = []sembuf{{semS, 0, 0}, {semN, -1, semUndo}, {semX, 1, semUndo}}
	opFinishNow  = []sembuf{{semS, 0, ipcNowait}, {semN, -1, semUndo}, {semX, 1, semUndo}}
	opCloseGate  = []sembuf{{semQ, 1, 0}}
	opGiveUp     = []sembuf{{semN, -1, semUndo}, {semX, 1, semUndo}}
)

// Re-release: a writer waiting for S = 0 sets Q := 0 again after these
// waits, doubling, which frees C listeners that armed after the release.
// Listeners of this project never need it, and none of them can arm while
// the writer waits (N = 1 and X = 0 hold them back), so a re-release at any
// moment of the wait is safe. A late arm costs the first wait plus about
// 120 us of timer slack and wake-up (BenchmarkRerelease/ref-late-1, 2 cores:
// 2.2 ms a late arm with a fixed 2 ms, 0.65 ms from 500 us, 0.2 ms from
// 100 us, 0.15 ms from 20 us); below 100 us the writer starts waking
// needlessly for 16 listeners of ours (0.01 to 0.09 a message at 50 us,
// 0.04 at 20 us), with no change in their time per message.
const (
	rereleaseFirst = 100 * time.Microsecond
	rereleaseMax   = 16 * time.Millisecond
)

// Bus is an open bus.
type Bus struct {
	Path   string
	SemKey int32
	ShmKey int32
	semid  int
	shmid  int
	mem    []byte // the attached segment; read-only for listeners

	// raw makes the waits raw syscalls, which keep the thread's P. Through
	// syscall.Syscall, the scheduler's hand-offs tripled a listener's
	// context switches per message (6.6 against 2.0, 16 listener processes
	// on 2 cores) and its time per message (713 against 230 us). Only for
	// a process with nothing else to run. See semop for how it stays clear
	// of the runtime's preemption and how an idle listener comes to sleep.
	raw bool
}

// Errors that main maps to exit statuses or that callers test for.
var (
	errTimeout = errors.New("timed out")
	errBusy    = errors.New("another process is broadcasting")
	errStale   = errors.New("stale bus")
	errClosed  = errors.New("bus closed")
	// A bus file that does not belong with its objects, or may have been
	// written or linked by someone else (busfile.go, trust).
	errUntrusted = errors.New("bus file not trusted")
	errChanged   = errors.New("bus file changed")
	errNoIPC     = errors.New("this kernel has no System V IPC (it was built without CONFIG_SYSVIPC), which every bus needs")
)

// busError is a failure on one bus: "PATH: what".
type busError struct {
	path string
	what string
	err  error // wrapped, for errors.Is
}

func (e *busError) Error() string { return e.path + ": " + e.what }
func (e *busError) Unwrap() error { return e.err }

func failf(path string, err error, format string, args ...any) error {
	return &busError{path: path, what: sprintf(format, args...), err: err}
}

// Open opens the bus at path. A listener attaches the segment read-only.
func Open(path string, listener bool) (*Bus, error) {
	o, f, err := findBus(path)
	if err != nil {
		return nil, err
	}
	f.close()
	sem, shm := o.semKey, o.shmKey
	b := &Bus{Path: path, SemKey: sem, ShmKey: shm}
	// Asking for the permissions here, rather than finding out at the first
	// semop, lets the error say which one is missing and whose bus it is.
	shmPerm, shmFlag, role := 0o600, 0, "broadcasting"
	if listener {
		shmPerm, shmFlag, role = 0o400, shmRdonly, "listening"
	}
	var e syscall.Errno
	if b.semid, e = semget(sem, nsems, 0o600); e != 0 {
		return nil, b.objectError("semaphores", sem, role, "read and write", e)
	}
	if b.shmid, e = shmget(shm, shmSize, shmPerm); e != 0 {
		need := "read and write"
		if listener {
			need = "read"
		}
		return nil, b.objectError("shared memory", shm, role, need, e)
	}
	if b.semid != o.semid || b.shmid != o.shmid { // made anew since checked
		return nil, failf(path, errChanged, "the bus's objects changed while bus opened it; try again")
	}
	if b.mem, e = shmat(b.shmid, shmFlag, shmSize); e != 0 {
		return nil, b.objectError("shared memory", shm, role, "read", e)
	}
	return b, nil
}

// objectError words a failure to reach one of the bus's objects.
func (b *Bus) objectError(what string, key int32, role, need string, e syscall.Errno) error {
	switch e {
	case syscall.ENOENT, syscall.EIDRM:
		verb := "are"
		if what == "shared memory" {
			verb = "is"
		}
		return failf(b.Path, errStale, "stale bus: its %s (key %d) %s gone; `bus create %s` makes it anew, `bus remove %s` removes it", what, key, verb, b.Path, b.Path)
	case syscall.EACCES, syscall.EPERM:
		owner := ""
		if o, ok := procObject(what == "semaphores", key); ok {
			owner = sprintf(", owned by %s, mode %s", userName(o.uid), modeString(o.perms))
		}
		return failf(b.Path, e, "permission denied: %s needs %s permission on the bus's %s%s", role, need, what, owner)
	}
	return failf(b.Path, e, "opening the %s (key %d): %v", what, key, e)
}

// Close detaches the segment. Semaphore adjustments need no closing.
func (b *Bus) Close() {
	if b.mem != nil {
		shmdt(b.mem)
		b.mem = nil
	}
}

// A raw wait holds the thread's P, so to the runtime its goroutine runs on,
// and after 10 ms without a reschedule sysmon sends the preemption signal
// (SIGURG). That signal used to end the raw wait: a Gosched woke another
// thread to take the goroutine (two Ps), and the wait went on through the
// scheduler, whose end woke sysmon from deep sleep into 20 us polling. At
// 64 and 128 listeners a round can outlast 10 ms: per message and
// listener (2 loaded cores), 0.18 signals, 0.43 futex calls, 1.2 sysmon
// wake-ups and 3.7 context switches at 64 (C: 2.0); at 128 it fed itself,
// 0.8, 2.9, 12 and 16. Now a raw wait yields before sysmon would signal: it
// lasts at most rawSlice after the last Gosched, which runs at least every
// yieldEvery (with one P and one goroutine, see listen, a Gosched makes no
// system call): 0.00, 0.00, 0.2 and 2.3 at 64; 0.00, 0.01, 0.6 and 2.8 at
// 128, where what is left over C is sysmon's 10 ms poll while a P is busy.
// After rawIdle with no broadcast in progress (X free), or rawPhase in any
// case, the process is idle: the wait goes on through the scheduler, so
// that sysmon, seeing no P busy, sleeps (TestIdleListenerSleeps).
// The slice's timer is set and cancelled on every wait, 6 to 8% of a
// streaming listener's CPU time (a VM's timers are the hypervisor's), so a
// wait after two that ended within quickWait sets none, and lets sysmon's
// signal end it should it last: in a stream, waits are short. Without
// timers altogether, a loaded CI run took twice as long (doc/performance,
// "What was tried"), as every long wait then ended in signals.
const (
	yieldEvery = 4 * time.Millisecond
	rawSlice   = 8 * time.Millisecond
	rawIdle    = 50 * time.Millisecond
	rawPhase   = time.Second
	quickWait  = 2 * time.Millisecond
)

// The raw waits' clock: the time until a Time read once is one vDSO call,
// where time.Now is two. Package variables, not Bus fields: one goroutine
// waits raw, and a time.Time in Bus would bring time's zone types in (4 KB).
var (
	epoch   time.Time
	yielded time.Duration // since epoch: when a raw wait last yielded
	// sparse: the last wait that went on through the scheduler lasted
	// rawIdle or more. Messages come seldom, so the next wait goes idle
	// after one slice: 55 wake-ups of the listener's threads an isolated
	// message, not 80. A wait that went idle too soon (it ended within
	// rawIdle) clears it: a steady stream stays raw.
	sparse bool
	// quick: how many raw waits in a row (up to 2) ended within quickWait.
	// After two, as in a steady stream, a wait with no deadline sets no
	// timer: its slice is ended by sysmon's preemption signal (EINTR)
	// instead, should it outlast 10 ms, and the waits after that signal are
	// timed again. Two, not one: after an isolated message, whose re-arm
	// is quick, the next wait still goes idle after one slice.
	quick uint8
	// signals: whether sysmon's preemption signal can end a raw wait (not
	// under GODEBUG=asyncpreemptoff=1); 0 until looked up.
	signals int8
)

// preemptSignals reports whether a raw wait may go without a timer: with
// asynchronous preemption off, nothing would end it but a message.
func preemptSignals() bool {
	if signals == 0 {
		signals = 1
		if strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
			signals = -1
		}
	}
	return signals > 0
}

func monotonic() time.Duration {
	if epoch.IsZero() {
		epoch = time.Now()
	}
	return -time.Until(epoch) // time.Since would be 200 more bytes
}

// semop applies ops, retrying on EINTR (the Go runtime signals its threads)
// with the time left until deadline; the zero deadline waits forever.
func (b *Bus) semop(ops []sembuf, deadline time.Time) error {
	if b.mem == nil { // closed: an error, not a panic on the segment
		return failf(b.Path, errClosed, "the bus was closed in this process")
	}
	raw, idled := b.raw, false
	start := time.Duration(-1) // of the raw wait
	var t timespec
	for {
		left := time.Duration(-1) // no timeout
		if !deadline.IsZero() {
			if left = time.Until(deadline); left <= 0 {
				return errTimeout
			}
		}
		sliced := false
		if raw {
			now := monotonic()
			if start < 0 {
				start = now
			}
			if now-yielded >= yieldEvery {
				runtime.Gosched()
				yielded = now
			}
			if slice := yielded + rawSlice - now; left < 0 || slice < left {
				left, sliced = slice, true
			}
		}
		var ts *timespec
		if left >= 0 && !(sliced && quick >= 2 && deadline.IsZero() && preemptSignals()) {
			// At most 2^31-1 s (68 years): 32-bit kernels read a signed
			// 32-bit tv_sec, and more is EINVAL (taken for a removed bus).
			t = timespec{int64(min(left/time.Second, 1<<31-1)), int64(left % time.Second)}
			ts = &t
		}
		var e syscall.Errno
		if raw {
			e = semtimedopRaw(b.semid, ops, ts)
		} else {
			e = semtimedop(b.semid, ops, ts)
		}
		switch e {
		case 0:
			if start >= 0 {
				waited := monotonic() - start
				if raw && waited < quickWait {
					quick = min(quick+1, 2)
				} else {
					quick = 0
				}
				if idled {
					sparse = waited >= rawIdle
				}
			}
			return nil
		case syscall.EINTR:
			if raw { // yield next: a stop-the-world may be waiting
				yielded = -yieldEvery
			}
			quick = 0 // the next waits are timed
			continue
		case syscall.EAGAIN:
			// The take's X -1 with IPC_NOWAIT fails at once when X is
			// taken; its W 0 waits, and a timed-out wait (the deadline's
			// or a raw slice's) is EAGAIN too: X tells which.
			if ops[0].flg&ipcNowait != 0 {
				if x, _ := semctl(b.semid, semX, semGetval, 0); x == 0 {
					return errBusy
				}
			}
			if sliced { // the slice ran out, not the deadline: yield next
				if waited := monotonic() - start; sparse || waited >= rawIdle {
					// Raw on while a broadcast is in progress (X taken): the
					// wait is for processes that run, only slowly.
					x, _ := semctl(b.semid, semX, semGetval, 0)
					raw = x == 0 && waited < rawPhase
					idled = !raw
				}
				continue
			}
			return errTimeout
		}
		return b.semError(e)
	}
}

// semopNow applies ops that never wait: a listener's count-out and leave,
// whose takes of S and W are of its own adds. Without semop's clock reads
// and slices: one of a message's three calls, 220 instructions.
func (b *Bus) semopNow(ops []sembuf) error {
	for {
		var e syscall.Errno
		if b.raw {
			e = semtimedopRaw(b.semid, ops, nil)
		} else {
			e = semtimedop(b.semid, ops, nil)
		}
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return b.semError(e)
	}
}

func (b *Bus) semError(e syscall.Errno) error {
	switch e {
	case syscall.EIDRM, syscall.EINVAL:
		return failf(b.Path, e, "the bus was removed")
	case syscall.EACCES:
		return b.objectError("semaphores", b.SemKey, "using the bus", "read and write", e)
	case syscall.ERANGE:
		return failf(b.Path, e, "a semaphore is at its maximum (SEMVMX): `bus info %s` shows which", b.Path)
	}
	return failf(b.Path, e, "semop: %v", e)
}

func (b *Bus) setQ0() error {
	if _, e := semctl(b.semid, semQ, semSetval, 0); e != 0 {
		return b.semError(e)
	}
	return nil
}

// Join registers a listener; from its return on, no broadcast is missed.
func (b *Bus) Join(deadline time.Time) error { return b.semop(opJoin, deadline) }

// Next waits for the next message and copies it into buf (at most 2048
// bytes, up to the first NUL), returning its length. On success the
// listener holds W: it must call Stay or Leave next. On a timeout it has
// left the bus: its arm of Q is undone when the process exits.
func (b *Bus) Next(buf *[shmSize]byte, deadline time.Time) (int, error) {
	if err := b.semop(opReleased, deadline); err != nil {
		if err == errTimeout {
			b.semopNow(opCountOut)
		}
		return 0, err
	}
	// Only the message, not the whole segment: 2 KB and 32 cache lines
	// for a message of a few bytes. Found again in the copy, as a peer
	// breaking the protocol could write while this listener reads.
	n := bytes.IndexByte(b.mem[:shmSize], 0)
	if n < 0 {
		n = shmSize // never trust the segment: a peer may not end it
	}
	n = copy(buf[:n], b.mem)
	if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
		n = i
	}
	return n, nil
}

// Stay finishes the listener's part of the round and re-arms for the next.
// On a timeout it has left the bus.
func (b *Bus) Stay(deadline time.Time) error {
	if err := b.CountOut(); err != nil {
		return err
	}
	return b.Rearm(deadline)
}

// CountOut tells the writer this listener has the message: the writer
// may finish. The listener still holds W until Rearm.
func (b *Bus) CountOut() error { return b.semopNow(opCountOut) }

// Rearm waits for the writer to finish and re-arms for the next message,
// in one call. On a timeout it has left the bus.
func (b *Bus) Rearm(deadline time.Time) error {
	err := b.semop(opRearm, deadline)
	if err == errTimeout {
		b.semopNow(opDropW)
	}
	return err
}

// Leave unregisters a listener that has just copied a message.
func (b *Bus) Leave() error { return b.semopNow(opLeave) }

// Broadcast sends msg to every registered listener and returns once each
// has copied it. With a deadline it gives up when it passes, with
// errTimeout: missed is -1 if nothing was sent, else how many listeners
// had not taken the message (at least 1). Past the deadline, a message
// every listener has taken is sent (nil), even if some are still copying.
func (b *Bus) Broadcast(msg []byte, deadline time.Time, nowait bool) (missed int, err error) {
	take := opTake
	if nowait {
		take = opTakeNowait
	}
	if err := b.semop(take, deadline); err != nil {
		return -1, err
	}
	if err := b.semop(opPublish, deadline); err != nil {
		b.semop(opUntake, time.Time{})
		return -1, err
	}
	n := copy(b.mem[:maxMessage], msg)
	b.mem[n] = 0
	// The listeners registered at the release, for a timeout's count: from
	// the publish to the release S only falls (a listener leaving while
	// armed), as joins need X and re-arms N = 0.
	registered := 0
	if !deadline.IsZero() {
		var e syscall.Errno
		if registered, e = semctl(b.semid, semS, semGetval, 0); e != 0 {
			b.semop(opGiveUp, time.Time{})
			return 0, b.semError(e)
		}
	}
	if err := b.setQ0(); err != nil {
		return 0, err
	}
	wait := rereleaseFirst
	for {
		until := time.Now().Add(wait)
		if !deadline.IsZero() && deadline.Before(until) {
			until = deadline
		}
		err := b.semop(opFinish, until)
		if err != errTimeout {
			return 0, err
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			break
		}
		if err := b.setQ0(); err != nil { // release listeners that armed late
			return 0, err
		}
		wait = min(2*wait, rereleaseMax)
	}
	// One last try, without waiting: the listeners may all have counted
	// out since the wait timed out.
	if err := b.semop(opFinishNow, time.Time{}); err != errBusy {
		return 0, err
	}
	// Close the gate before finishing, so that no listener that was not
	// released yet slips through to the next writer's segment.
	if err := b.semop(opCloseGate, time.Time{}); err != nil {
		return 0, err
	}
	// Missed: the listeners not released, now that none can be. S counts
	// them and those still copying, which will have the message (they hold
	// W, and no writer publishes before W is 0); W counts those copying and
	// those counted out. So registered - W is the unreleased plus any that
	// left during the round, and the lesser of the two is exact unless some
	// left, never less than the unreleased.
	var all ipcBuf
	if e := semctlBuf(b.semid, semGetall, &all); e != 0 {
		return 0, b.semError(e)
	}
	missed = max(0, min(all.ushort(semS), registered-all.ushort(semW)))
	if err := b.semop(opGiveUp, time.Time{}); err != nil {
		return 0, err
	}
	if missed == 0 {
		return 0, nil
	}
	return missed, errTimeout
}

// checkMessage says why msg cannot be sent, or returns nil.
func checkMessage(msg []byte) error {
	if len(msg) > maxMessage {
		return errorf("message too long (%d bytes; at most %d)", len(msg), maxMessage)
	}
	if i := bytes.IndexByte(msg, 0); i >= 0 {
		return errorf("message has a NUL byte at offset %d", i)
	}
	if !utf8.Valid(msg) {
		return errors.New("message is not valid UTF-8")
	}
	return nil
}
