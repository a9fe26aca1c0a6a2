package main

// The bus protocol: the bus file, its System V objects, and the race-free
// broadcast that bus(5) describes.
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
//     (README, Performance: what it saves).
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
	"path/filepath"
	"runtime"
	"strconv"
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

// parseKeys reads the bus file's contents: two lines, each a decimal key in
// 1..2^30-1 ended by a newline, and nothing else.
func parseKeys(data []byte) (sem, shm int32, err error) {
	var keys [2]int32
	rest := data
	for i := range keys {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			if len(rest) == 0 {
				if i == 0 {
					return 0, 0, errors.New("empty")
				}
				return 0, 0, errors.New("only one line")
			}
			return 0, 0, errorf("line %d is not ended by a newline", i+1)
		}
		line := rest[:nl]
		rest = rest[nl+1:]
		k, err := parseKey(line)
		if err != nil {
			return 0, 0, errorf("line %d %w", i+1, err)
		}
		keys[i] = k
	}
	if len(rest) != 0 {
		return 0, 0, errors.New("more than two lines")
	}
	return keys[0], keys[1], nil
}

func parseKey(line []byte) (int32, error) {
	if len(line) == 0 {
		return 0, errors.New("is empty")
	}
	neg := line[0] == '-'
	digits := line
	if neg || line[0] == '+' {
		digits = line[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return 0, errors.New("is not a decimal key")
	}
	var v int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, errors.New("is not a decimal key")
		}
		v = v*10 + int64(c-'0')
	}
	if neg || v < 1 || v > maxKey {
		return 0, errorf("is out of range (keys are 1 to %d)", maxKey)
	}
	return int32(v), nil
}

func formatKeys(sem, shm int32) []byte {
	return []byte(strconv.Itoa(int(sem)) + "\n" + strconv.Itoa(int(shm)) + "\n")
}

// readBusFile reads and parses a bus file without blocking on a FIFO or
// reading more than a bus file can hold. Raw calls, not os.File: a one-shot
// broadcast then starts no poller (epoll_create, eventfd, epoll_ctl).
func readBusFile(path string) (sem, shm int32, st *syscall.Stat_t, err error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, nil, fileError(path, "reading", err)
	}
	defer syscall.Close(fd)
	st = new(syscall.Stat_t)
	if err := syscall.Fstat(fd, st); err != nil {
		return 0, 0, nil, fileError(path, "reading", err)
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
	case syscall.S_IFDIR:
		return 0, 0, st, failf(path, nil, "is a directory, not a bus file")
	default:
		return 0, 0, st, failf(path, nil, "not a bus file (not a regular file)")
	}
	var buf [64]byte
	n, err := readFull(fd, buf[:])
	if err != nil {
		return 0, 0, st, fileError(path, "reading", err)
	}
	if n == len(buf) {
		return 0, 0, st, failf(path, nil, "not a bus file (too long)")
	}
	sem, shm, err = parseKeys(buf[:n])
	if err != nil {
		return 0, 0, st, failf(path, err, "not a bus file (%v)", err)
	}
	return sem, shm, st, nil
}

// fileError words a failure on the bus file itself.
func fileError(path, doing string, err error) error {
	errno, ok := as[syscall.Errno](err)
	if !ok {
		return failf(path, err, "%s: %v", doing, err)
	}
	switch errno {
	case syscall.ENOENT:
		var st syscall.Stat_t
		if doing == "creating" && syscall.Stat(filepath.Dir(path), &st) == syscall.ENOENT {
			return failf(path, err, "its folder %s does not exist", filepath.Dir(path))
		}
		if doing == "creating" { // the folder is there (/proc, say) and refuses
			return failf(path, err, "creating the bus file: %v", errno)
		}
		if syscall.Lstat(path, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			return failf(path, err, "a symbolic link to %s, which does not exist", followLinks(path))
		}
		return failf(path, err, "no such bus file")
	case syscall.ENOTDIR:
		return failf(path, err, "no such bus file (a parent is not a directory)")
	case syscall.EACCES, syscall.EPERM:
		return failf(path, err, "permission denied %s the bus file%s", doing, ownerNote(path, doing == "removing"))
	case syscall.ELOOP:
		return failf(path, err, "too many levels of symbolic links")
	}
	return failf(path, err, "%s the bus file: %v", doing, errno)
}

// ownerNote says who owns path and its mode, or its folder's (which
// decides who may add or remove files), for permission errors.
func ownerNote(path string, folder bool) string {
	var st syscall.Stat_t
	if folder || syscall.Stat(path, &st) != nil {
		if syscall.Stat(filepath.Dir(path), &st) != nil {
			return ""
		}
		sticky := ""
		if st.Mode&syscall.S_ISVTX != 0 {
			sticky = ": sticky, only the file's owner, the folder's or root may remove it"
		}
		return sprintf(" (its folder belongs to %s, mode %s%s)", userName(st.Uid), modeString(st.Mode&0o1777), sticky)
	}
	return sprintf(" (it belongs to %s, mode %s)", userName(st.Uid), modeString(st.Mode&0o777))
}

// modeString is ls's rendering of a mode's permission and sticky bits.
func modeString(m uint32) string {
	const rwx = "rwxrwxrwx"
	b := []byte("---------")
	for i := range b {
		if m&(1<<(8-i)) != 0 {
			b[i] = rwx[i]
		}
	}
	if m&syscall.S_ISVTX != 0 {
		b[8] = "Tt"[m&1]
	}
	return string(b)
}

// Open opens the bus at path. A listener attaches the segment read-only.
func Open(path string, listener bool) (*Bus, error) {
	o, _, err := findBus(path)
	if err != nil {
		return nil, err
	}
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
// timers altogether, a loaded CI run took twice as long (README,
// Performance), as every long wait then ended in signals.
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
			t = timespec{uintptr(min(left/time.Second, 1<<31-1)), uintptr(left % time.Second)}
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

// randomRead fills b from the kernel's random pool. Not crypto/rand: it
// brings a FIPS DRBG, AES and SHA into the binary (about 390 KB of a 2 MB
// budget) for the same bytes.
func randomRead(b []byte) error {
	fd, err := syscall.Open("/dev/urandom", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/dev/urandom", Err: err}
	}
	defer syscall.Close(fd)
	n, err := readFull(fd, b)
	if err == nil && n < len(b) {
		err = syscall.EIO // it never ends; if it does, it is broken
	}
	if err != nil {
		return &os.PathError{Op: "read", Path: "/dev/urandom", Err: err}
	}
	return nil
}

// randomKey returns a key in 1..2^30-1.
func randomKey() (int32, error) {
	var b [4]byte
	for {
		if err := randomRead(b[:]); err != nil {
			return 0, err
		}
		k := int32((uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24) & maxKey)
		if k != 0 {
			return k, nil
		}
	}
}

// randomName returns "random." and 30 characters of [0-9a-zA-Z], chosen
// uniformly (bytes of 248 and more are dropped: 248 = 4 * 62).
func randomName() (string, error) {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	name := []byte("random.")
	var pool [64]byte
	for len(name) < 37 {
		if err := randomRead(pool[:]); err != nil {
			return "", err
		}
		for _, c := range pool {
			if c < 248 && len(name) < 37 {
				name = append(name, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(name), nil
}

// defaultBusDir is where a bus made without a path goes.
func defaultBusDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "bus")
	}
	return "/run/bus"
}

// objects are a bus's semaphore array and segment, while being made.
type objects struct {
	semKey, shmKey int32
	semid, shmid   int
}

// makeObjects creates a fresh semaphore array (X = 1) and segment with
// mode perm, removing what it made if it fails part-way.
func makeObjects(perm int) (o objects, err error) {
	o.semid, o.shmid = -1, -1
	for {
		if o.semKey, err = randomKey(); err != nil {
			return o, err
		}
		var e syscall.Errno
		if o.semid, e = semget(o.semKey, nsems, ipcCreat|ipcExcl|perm); e == 0 {
			break
		} else if e != syscall.EEXIST {
			return o, errorf("creating the semaphores: %w", e)
		}
	}
	if _, e := semctl(o.semid, semX, semSetval, 1); e != 0 {
		o.remove()
		return o, errorf("setting up the semaphores: %w", e)
	}
	for {
		if o.shmKey, err = randomKey(); err != nil {
			o.remove()
			return o, err
		}
		var e syscall.Errno
		if o.shmid, e = shmget(o.shmKey, shmSize, ipcCreat|ipcExcl|perm); e == 0 {
			break
		} else if e != syscall.EEXIST {
			o.remove()
			return o, errorf("creating the shared memory: %w", e)
		}
	}
	return o, nil
}

func (o *objects) remove() {
	if o.semid >= 0 {
		semctl(o.semid, 0, ipcRmid, 0)
	}
	if o.shmid >= 0 {
		shmctl(o.shmid, ipcRmid, nil)
	}
}

// Create makes a bus at path, or at a random path in the default folder when
// path is "". It returns the path. An existing bus is left alone (or, with
// excl, an error); a stale one is repaired; anything else is never touched.
func Create(path string, excl bool) (string, error) {
	if path == "" {
		dir := defaultBusDir()
		if err := mkdirAll(dir, 0o755); err != nil {
			return "", failf(dir, err, "making the bus folder: %v", err)
		}
		for {
			name, err := randomName()
			if err != nil {
				return "", failf(dir, err, "choosing a random name: %v", err)
			}
			p := filepath.Join(dir, name)
			_, err = createAt(p)
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return p, err
		}
	}
	existed, err := createAt(path)
	if !existed {
		return path, err
	}
	if excl {
		return path, failf(path, os.ErrExist, "already exists")
	}
	return path, repairIfStale(path)
}

// createAt makes a bus file at path with new objects, atomically: the file is
// written under a temporary name and linked into place, so no reader sees it
// half-written and two creates racing for one path make one bus. existed
// reports that path was there already (nothing was made then).
func createAt(path string) (existed bool, err error) {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) == nil {
		return true, os.ErrExist
	}
	o, err := makeObjects(0o600)
	if err != nil {
		return false, failf(path, err, "%v", err)
	}
	tmp, err := writeTemp(path, formatKeys(o.semKey, o.shmKey), nil)
	if err != nil {
		o.remove()
		return false, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		o.remove()
		if errors.Is(err, os.ErrExist) {
			return true, os.ErrExist
		}
		return false, fileError(path, "creating", unwrapPathError(err))
	}
	return false, nil
}

// writeTemp writes data to a new file beside path, with like's owner and
// mode if like is given (0600 otherwise), and returns its name.
func writeTemp(path string, data []byte, like *syscall.Stat_t) (string, error) {
	dir, base := filepath.Split(path)
	for {
		name, err := randomName()
		if err != nil {
			return "", failf(path, err, "choosing a temporary name: %v", err)
		}
		tmp := filepath.Join(dir, "."+base+".tmp"+name[7:15])
		fd, err := syscall.Open(tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err == syscall.EEXIST {
			continue
		}
		if err != nil {
			return "", fileError(path, "creating", err)
		}
		if like != nil {
			syscall.Fchown(fd, int(like.Uid), int(like.Gid)) // keeps ours if not permitted
			syscall.Fchmod(fd, like.Mode&0o777)
		}
		err = writeAll(fd, data)
		if cerr := syscall.Close(fd); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
			return "", failf(path, err, "writing the bus file: %v", err)
		}
		return tmp, nil
	}
}

func unwrapPathError(err error) error {
	switch e := err.(type) {
	case *os.PathError:
		return e.Err
	case *os.LinkError:
		return e.Err
	}
	return err
}

// as is errors.As for one type, along a chain of Unwrap() error: enough
// for bus's errors, without errors.As's reflection.
func as[T error](err error) (T, bool) {
	for err != nil {
		if t, ok := err.(T); ok {
			return t, true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	var zero T
	return zero, false
}

// readFile is os.ReadFile without os's FileInfo, whose ModTime would keep
// time.Time's formatting and zone loading in the binary.
func readFile(name string) ([]byte, error) {
	fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	data := make([]byte, 0, 4096)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := readFull(fd, data[len(data):cap(data)])
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: name, Err: err}
		}
		if data = data[:len(data)+n]; len(data) < cap(data) {
			return data, nil // the end of the file
		}
	}
}

// readFull reads into b until it is full or the file ends, through the
// interruptions the runtime's signals cause, and returns how much it read.
func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := syscall.Read(fd, b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := syscall.Write(fd, data)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// followLinks follows path while it is a symbolic link (40 at most, as
// the kernel does) and returns what it names. Not filepath.EvalSymlinks:
// see readFile.
func followLinks(path string) string {
	buf := make([]byte, syscall.PathMax)
	for range 40 {
		n, err := syscall.Readlink(path, buf)
		if err != nil {
			break
		}
		target := string(buf[:n])
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return path
}

// mkdirAll is os.MkdirAll (see readFile).
func mkdirAll(dir string, perm uint32) error {
	var st syscall.Stat_t
	if syscall.Stat(dir, &st) == nil {
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			return syscall.ENOTDIR
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := syscall.Mkdir(dir, perm); err != nil && err != syscall.EEXIST {
		return err
	}
	return nil
}

// findBus reads the bus file at path and finds its objects: an id of -1
// is an object gone (the bus is stale). Objects that are there but not a
// bus's are an error, the same words for every subcommand, which then
// touches nothing (not even the other half of a stale bus).
func findBus(path string) (o objects, st *syscall.Stat_t, err error) {
	if o.semKey, o.shmKey, st, err = readBusFile(path); err == nil {
		err = o.find(path)
	}
	return
}

// find finds the objects of o's keys (see findBus).
func (o *objects) find(path string) (err error) {
	if o.semid, err = findObject(path, true, o.semKey); err == nil {
		o.shmid, err = findObject(path, false, o.shmKey)
	}
	return err
}

func (o *objects) stale() bool { return o.semid < 0 || o.shmid < 0 }

// findObject finds one object of a bus by its key, and checks that it is a
// bus's: exactly 5 semaphores, or a segment of exactly 2048 bytes. semget
// and shmget with flags 0 ask for no permission and refuse (EINVAL) an
// object smaller than asked for, so two calls pin the size for any user;
// IPC_STAT would need read permission (leaving a user who may not read the
// objects unchecked) and semid64_ds's layout, which differs by arch.
func findObject(path string, sem bool, key int32) (int, error) {
	get, n, what := shmget, shmSize, "shared memory"
	if sem {
		get, n, what = semget, nsems, "semaphores"
	}
	id, e := get(key, n, 0)
	if e == 0 {
		if _, e = get(key, n+1, 0); e != 0 {
			return id, nil
		}
	}
	switch e {
	case syscall.ENOENT:
		return -1, nil
	case 0, syscall.EINVAL: // more, fewer
		cmp := "fewer than"
		if e == 0 {
			cmp = "more than"
		} else if !sem {
			cmp = "less than"
		}
		has := sprintf("%s %d", cmp, n)
		if p, ok := procObject(sem, key); ok { // the number, for the message only
			has = strconv.FormatInt(p.nsems+p.size, 10)
		}
		if sem {
			return -1, failf(path, syscall.EINVAL, "not a bus: the semaphore array of key %d has %s semaphores, a bus has %d", key, has, nsems)
		}
		return -1, failf(path, syscall.EINVAL, "not a bus: the shared memory of key %d is %s bytes, a bus's is %d", key, has, shmSize)
	}
	return -1, failf(path, e, "finding the %s (key %d): %v", what, key, e)
}

// repairIfStale gives a stale bus new objects with the file's owner, group
// and class permissions, and rewrites the file (under a lock, so that two
// repairs racing make one bus).
func repairIfStale(path string) error {
	if old, _, err := findBus(path); err != nil || !old.stale() {
		return err
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fileError(path, "reading", err)
	}
	defer syscall.Close(fd)
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX)
		if err != syscall.EINTR { // the runtime's signals interrupt the wait
			break
		}
	}
	if err != nil {
		return failf(path, err, "locking the bus file: %v", err)
	}
	old, st, err := findBus(path) // another create may have repaired it
	if err != nil || !old.stale() {
		return err
	}
	// A link (a well-known path naming a bus kept elsewhere) stays a link:
	// the bus it names is the one repaired.
	path = followLinks(path)
	o, err := makeObjects(int(objectMode(st.Mode)))
	if err != nil {
		return failf(path, err, "repairing the stale bus: %v", err)
	}
	tmp, err := writeTemp(path, formatKeys(o.semKey, o.shmKey), st)
	if err == nil {
		// The objects get the new file's owner and group: the old ones
		// where writeTemp could keep them (root; an owner in the group),
		// else whoever repaired it, never objects that the file disowns.
		var now syscall.Stat_t
		if err = syscall.Stat(tmp, &now); err != nil {
			err = fileError(path, "rewriting", err)
		} else {
			err = setObjects(path, "changing", o, func(b *ipcBuf) { b.setOwner(now.Uid, now.Gid) })
		}
		if err == nil {
			if err = syscall.Rename(tmp, path); err != nil {
				err = fileError(path, "rewriting", err)
			}
		}
		if err == nil {
			old.remove() // whichever half was left, once nothing can fail
		}
		if err != nil {
			os.Remove(tmp)
		}
	}
	if err != nil {
		o.remove()
	}
	return err
}

// objectMode is the IPC mode that a bus file's mode stands for: any bit of
// a class grants that class read and write.
func objectMode(fileMode uint32) uint32 {
	var m uint32
	for _, class := range []uint32{0o700, 0o070, 0o007} {
		if fileMode&class != 0 {
			m |= 0o666 & class
		}
	}
	return m
}

// fileMode is the bus file's mode for the classes granted in objMode: read
// for each, write for the owner only (the C tool's bus_chmod).
func fileMode(objMode uint32) uint32 {
	var m uint32
	if objMode&0o700 != 0 {
		m |= 0o600
	}
	if objMode&0o070 != 0 {
		m |= 0o040
	}
	if objMode&0o007 != 0 {
		m |= 0o004
	}
	return m
}

// removeObjects removes what is there of the objects of keys sem and shm
// (the tests' tidying, and a reboot's doing).
func removeObjects(sem, shm int32) {
	if id, e := semget(sem, 0, 0); e == 0 {
		semctl(id, 0, ipcRmid, 0)
	}
	if id, e := shmget(shm, 0, 0); e == 0 {
		shmctl(id, ipcRmid, nil)
	}
}

// Remove removes the bus's objects, then its file. A stale bus's file is
// removed too, reported by a note. Everything that may refuse is asked
// first, so that a refused remove leaves the bus whole and working: the
// objects' IPC_RMID by an IPC_SET that changes nothing (the kernel grants
// both to the same users: the owner, the creator, CAP_SYS_ADMIN), then the
// file's unlink by renaming it aside in its folder (the same permission,
// the sticky bit's included). Once the file is aside, nothing is left that
// can refuse. A listener opening the path from then on finds no bus file,
// as it would a moment later; one that opened it before finds the bus
// removed. Only an unforeseen refusal of IPC_RMID (a security module) puts
// the file back, and the bus may then have lost its semaphores.
func Remove(path string) (note string, err error) {
	o, _, err := findBus(path)
	if err != nil {
		return "", err
	}
	if err := setObjects(path, "removing", o, func(*ipcBuf) {}); err != nil {
		return "", err
	}
	name, err := randomName()
	if err != nil {
		return "", failf(path, err, "choosing a temporary name: %v", err)
	}
	dir, base := filepath.Split(path)
	aside := filepath.Join(dir, "."+base+".rm"+name[7:15])
	if err := syscall.Rename(path, aside); err != nil {
		return "", fileError(path, "removing", err)
	}
	done := func(e syscall.Errno) bool { return e == 0 || e == syscall.EINVAL || e == syscall.EIDRM } // gone meanwhile will do
	var e syscall.Errno
	what, key := "semaphores", o.semKey
	if o.semid >= 0 {
		_, e = semctl(o.semid, 0, ipcRmid, 0)
	}
	if done(e) && o.shmid >= 0 {
		what, key, e = "shared memory", o.shmKey, shmctl(o.shmid, ipcRmid, nil)
	}
	if !done(e) {
		syscall.Rename(aside, path)
		return "", ownerError(path, "removing", what, key, e)
	}
	if err := syscall.Unlink(aside); err != nil {
		return "", fileError(path, "removing", err)
	}
	if o.stale() {
		return path + ": the bus was stale (its objects were gone); removed its file", nil
	}
	return "", nil
}

// ownerError words a failure to remove or change (IPC_RMID, IPC_SET) one
// of a bus's objects, which only its owner, its creator or root may do.
func ownerError(path, doing, what string, key int32, e syscall.Errno) error {
	if e == syscall.EPERM || e == syscall.EACCES {
		owner := ""
		if o, ok := procObject(what == "semaphores", key); ok {
			owner = sprintf(" (owned by %s)", userName(o.uid))
		}
		return failf(path, e, "permission denied: only the bus's owner or root may change or remove its %s%s", what, owner)
	}
	return failf(path, e, "%s the %s: %v", doing, what, e)
}

// setObjects applies change to the IPC_STAT of each object there is and
// IPC_SETs it. Without read permission, IPC_STAT is refused, but IPC_SET
// (which asks only to be the owner) is not: /proc/sysvipc, which anyone
// may read, then gives the owner, group and mode it sets.
func setObjects(path, doing string, o objects, change func(*ipcBuf)) error {
	for _, x := range []struct {
		sem bool
		key int32
		id  int
	}{{true, o.semKey, o.semid}, {false, o.shmKey, o.shmid}} {
		if x.id < 0 {
			continue
		}
		ctl, what := shmctl, "shared memory"
		if x.sem {
			ctl, what = semctlBuf, "semaphores"
		}
		var b ipcBuf
		e := ctl(x.id, ipcStat, &b)
		if e == syscall.EACCES {
			if p, ok := procObject(x.sem, x.key); ok {
				b.setOwner(p.uid, p.gid)
				b.setMode(p.perms)
				e = 0
			}
		}
		if e == 0 {
			change(&b)
			e = ctl(x.id, ipcSet, &b)
		}
		if e != 0 {
			return ownerError(path, doing, what, x.key, e)
		}
	}
	return nil
}

// goneWords says which of a stale bus's objects are gone.
func goneWords(semGone, shmGone bool) string {
	switch {
	case semGone && shmGone:
		return "its semaphores and shared memory are gone"
	case semGone:
		return "its semaphores are gone"
	}
	return "its shared memory is gone"
}

// openObjects finds a bus's objects for changing them (no permission asked).
func openObjects(path string) (o objects, st *syscall.Stat_t, err error) {
	if o, st, err = findBus(path); err == nil && o.stale() {
		err = failf(path, errStale, "stale bus: %s; `bus create %s` makes it anew", goneWords(o.semid < 0, o.shmid < 0), path)
	}
	return
}

// Chmod gives the classes that mode returns access to the bus; mode gets
// the classes that have it now, read off the semaphores (the objects decide
// who gets in, the file only follows them).
func Chmod(path string, mode func(current uint32) uint32) error {
	o, _, err := openObjects(path)
	if err != nil {
		return err
	}
	m := uint32(1 << 31) // not yet known
	err = setObjects(path, "changing", o, func(b *ipcBuf) {
		if m == 1<<31 {
			m = objectMode(mode(b.mode()))
		}
		b.setMode(m)
	})
	if err != nil {
		return err
	}
	if err := os.Chmod(path, os.FileMode(fileMode(m))); err != nil {
		return fileError(path, "changing the mode of", unwrapPathError(err))
	}
	return nil
}

// Chown gives the bus's file and objects to uid and gid (-1 keeps one).
func Chown(path string, uid, gid int) error {
	o, st, err := openObjects(path)
	if err != nil {
		return err
	}
	u, g := st.Uid, st.Gid
	if uid >= 0 {
		u = uint32(uid)
	}
	if gid >= 0 {
		g = uint32(gid)
	}
	// The file first: the kernel refuses more there (a user may not give a
	// file away, nor to a group they are not in), and a refusal must leave
	// the objects as they were.
	if err := syscall.Chown(path, int(u), int(g)); err != nil {
		if err == syscall.EPERM && os.Geteuid() != 0 {
			return failf(path, err, "permission denied: only root may give a bus to another user; its owner (%s) may give it only to a group they are in", userName(st.Uid))
		}
		return fileError(path, "changing the owner of", err)
	}
	if err := setObjects(path, "changing", o, func(b *ipcBuf) { b.setOwner(u, g) }); err != nil {
		syscall.Chown(path, int(st.Uid), int(st.Gid)) // as it was, if we may
		return err
	}
	return nil
}

// procEntry is one line of /proc/sysvipc/sem or /proc/sysvipc/shm.
type procEntry struct {
	key, id    int64
	perms      uint32
	uid, gid   uint32
	nsems      int64 // sem only
	size       int64 // shm only
	nattch     int64 // shm only
	cpid, lpid int64 // shm only
}

// procObject looks key up in /proc/sysvipc, readable by anyone, so that an
// error can name the owner of an object its caller may not touch.
func procObject(sem bool, key int32) (procEntry, bool) {
	name := "/proc/sysvipc/shm"
	if sem {
		name = "/proc/sysvipc/sem"
	}
	data, err := readFile(name)
	if err != nil {
		return procEntry{}, false
	}
	lines := strings.Split(string(data), "\n")
	for _, line := range lines[min(1, len(lines)):] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		num := func(i int, base int) int64 { v, _ := strconv.ParseInt(f[i], base, 64); return v }
		if num(0, 10) != int64(key) {
			continue
		}
		e := procEntry{key: num(0, 10), id: num(1, 10), perms: uint32(num(2, 8))}
		if sem { // key semid perms nsems uid gid cuid cgid ...
			e.nsems, e.uid, e.gid = num(3, 10), uint32(num(4, 10)), uint32(num(5, 10))
		} else if len(f) >= 9 { // key shmid perms size cpid lpid nattch uid gid ...
			e.size, e.cpid, e.lpid, e.nattch = num(3, 10), num(4, 10), num(5, 10), num(6, 10)
			e.uid, e.gid = uint32(num(7, 10)), uint32(num(8, 10))
		}
		return e, true
	}
	return procEntry{}, false
}

// userName and groupName read /etc/passwd and /etc/group (no C library).
func userName(uid uint32) string  { return idName("/etc/passwd", uid, "uid") }
func groupName(gid uint32) string { return idName("/etc/group", gid, "gid") }

func idName(file string, id uint32, kind string) string {
	n := strconv.FormatUint(uint64(id), 10)
	if name, ok := lookupDB(file, func(f []string) bool { return f[2] == n }); ok {
		return name + " (" + kind + " " + n + ")"
	}
	return kind + " " + n
}

// lookupDB returns field 0 of the first line of a passwd-like file that match
// accepts, or field 2 with lookupID.
func lookupDB(file string, match func(fields []string) bool) (string, bool) {
	data, err := readFile(file)
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && !strings.HasPrefix(line, "#") && match(f) {
			return f[0], true
		}
	}
	return "", false
}

// lookupID resolves a user or group given by name or number. 4294967295
// is (uid_t)-1, "no change" to chown(2) and refused by IPC_SET: it names
// no one. An id that int cannot hold (2^31 and up on 32-bit arches) is
// refused too, rather than turned negative, which Chown reads as "keep".
func lookupID(file, name string) (int, bool) {
	whole := func(n uint64) bool { return n != 1<<32-1 && uint64(int(n)) == n }
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return int(n), whole(n)
	}
	var id string
	_, ok := lookupDB(file, func(f []string) bool {
		if f[0] == name {
			id = f[2]
			return true
		}
		return false
	})
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(id, 10, 32)
	return int(n), err == nil && whole(n)
}
