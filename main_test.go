package main

// The test harness: the test binary re-executes itself as `bus` (as Go's
// own command tests do), with real semaphores, and the helpers every test
// file uses (buses of the test's own, listeners started on readiness,
// writers, bounded waits). BUS_TEST_EXEC_PREFIX, if set, is prepended to
// every spawned command (a qemu runner, for other arches).

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

const (
	asBus = "BUS_TEST_AS_BUS"
	// supervised is set in the suite that TestMain re-executes: see TestMain.
	supervised = "BUS_TEST_SUPERVISED"
	// ownIPC is "1" in a run that has an IPC namespace of its own, whose
	// objects are all its own: it checks that none is left at its end.
	ownIPC = "BUS_TEST_OWN_IPC"
)

// patience bounds every wait on the machine in these tests: nominalPatience
// times scale. Never a bound that a right program meets only on a quiet
// machine: it is the most a test waits before failing, not a time it sleeps.
var patience = nominalPatience

const nominalPatience = 20 * time.Second

// scale is how much slower than nominal this machine starts a child (the
// test binary as `bus help`, through BUS_TEST_EXEC_PREFIX), measured at
// the start: loaded machines and qemu stretch every wait by as much.
var scale = 1.0

const (
	nominalStart = 5 * time.Millisecond // `bus help` on a quiet 2-core machine: 2-4 ms
	qemuScale    = 4                    // at least this under qemu (BUS_TEST_EXEC_PREFIX)
	maxScale     = 30                   // 10 minutes of patience: a hung test still ends
	// Under emulation a start is 110 to 170 ms (22 to 34 times nominal),
	// but a process already running reacts faster than that says, and the
	// timeouts the tests expect, stretched as much, were a third of an
	// emulated run's time and CPU (a waiting bus wakes every 8 ms, and each
	// wake is costly emulated). 15 still gives 5 minutes of patience.
	maxEmulatedScale = 15
)

// scaled is d (a bound on a wait on the machine) stretched by scale.
func scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }

// scaledT is scaled(d) as bus's -t takes it, to the millisecond.
func scaledT(d time.Duration) string { return scaled(d).Round(time.Millisecond).String() }

// lazyRE is a regexp compiled on its first use. The test binary is also
// every bus the suite starts, and a package-level MustCompile would run in
// each of them: 14 of them were 27 ms of each start under qemu.
func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// TestMain runs the suite in a child of its own (as root, in an IPC
// namespace of its own), with $TMPDIR a folder that it removes when the
// child ends, however it ends: failed, panicked, or stopped by -timeout.
// Other programs' buses are never seen nor touched, and a run leaves
// nothing behind: no objects (the namespace goes with its last process,
// and the child checks that it is empty first), no files.
func TestMain(m *testing.M) {
	if os.Getenv(asBus) == "1" {
		main()
		return
	}
	if os.Getenv(supervised) == "" {
		os.Exit(supervise())
	}
	if _, err := os.Stat("/proc/sysvipc/sem"); err != nil {
		fmt.Fprintf(os.Stderr, "System V IPC is not usable here: %v\n", err)
		os.Exit(1)
	}
	flag.Parse()
	// The parallel tests are TestSpinModels and the 12 emulated runs of
	// TestArches and TestKernels, which emulators bounds (3 at once, the
	// longest first). go test's -parallel, the number of cores by default
	// (2 here), would bound them first, in its own order: 2 at once left
	// the machine 27% idle, and at 4 the guests waited behind qemu-user
	// runs. A -parallel given stands; fuzzing, where it counts workers,
	// keeps go test's.
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" || f.Name == "test.fuzz" })
	if !given {
		flag.Set("test.parallel", "16")
	}
	if f := flag.Lookup("test.fuzzworker"); f == nil || f.Value.String() != "true" {
		measureScale() // once, in the fuzzing coordinator
	}
	code := m.Run()
	if os.Getenv(ownIPC) == "1" {
		if left, err := sysvObjects(); err != nil || len(left) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: System V objects left behind in the suite's own IPC namespace: %v %v\n", left, err)
			code = 1
		}
	}
	os.Exit(code)
}

// supervise re-executes the test binary with the same arguments as the
// suite, in a private IPC namespace if root, and a $TMPDIR it removes after.
func supervise() int {
	dir, err := os.MkdirTemp("", "bustest-run")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // children run as another user reach buses in it
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), supervised+"=1", "TMPDIR="+dir, ownIPC+"=0")
	// Pdeathsig: killed with its parent (it is the forking thread's).
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Getuid() == 0 {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWIPC
		cmd.Env[len(cmd.Env)-1] = ownIPC + "=1"
	}
	// SIGINT and SIGTERM reach the child (Ctrl-C, the go tool); the parent
	// waits for it, then cleans up.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM)
	err = cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			fmt.Fprintf(os.Stderr, "running the suite: %v\n", err)
			return 1
		}
	}
	if c := cmd.ProcessState.ExitCode(); c >= 0 {
		return c
	}
	return 2 // killed by a signal
}

// measureScale sets scale and patience: how much slower than nominal
// `bus help` runs here (the median of 5), or how many runnable tasks share
// each core (the load average), whichever is more.
func measureScale() {
	var took []float64
	for range 5 {
		cmd := busCommand("help")
		start := time.Now()
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "bus help: %v\n", err)
			break
		}
		took = append(took, float64(time.Since(start)))
	}
	start := 0.0
	if len(took) > 0 {
		start = median(took)
	}
	load := 0.0
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			load, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	scale = max(start/float64(nominalStart), load/float64(runtime.NumCPU()))
	if os.Getenv("BUS_TEST_EXEC_PREFIX") != "" {
		scale = max(scale, qemuScale)
	}
	scale = min(max(scale, 1), maxScale)
	if emulated() {
		scale = min(scale, maxEmulatedScale)
	}
	patience = scaled(nominalPatience).Round(time.Millisecond)
	if testing.Verbose() {
		fmt.Printf("bus tests: a child starts in %v (nominal %v), load %.1f on %d cores: waits bounded x%.1f, patience %v\n",
			time.Duration(start).Round(10*time.Microsecond), nominalStart, load, runtime.NumCPU(), scale, patience)
	}
}

// sysvObjects lists the semaphore arrays and segments of the IPC
// namespace: only in a namespace of the suite's own are they all its own.
func sysvObjects() ([]string, error) {
	var out []string
	for _, kind := range []string{"sem", "shm"} {
		data, err := os.ReadFile("/proc/sysvipc/" + kind)
		if err != nil {
			return nil, err
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			out = append(out, kind+" key "+f[0]+" id "+f[1])
		}
	}
	slices.Sort(out)
	return out, nil
}

// emulated says the suite runs under emulation: qemu-user (TestArches sets
// BUS_TEST_EXEC_PREFIX) or a TCG guest's own kernel (TestKernels sets
// BUS_TEST_EMULATED). The costliest tests then make fewer rounds: the same
// checks, in a tenth of a CPU's speed.
func emulated() bool {
	return os.Getenv("BUS_TEST_EXEC_PREFIX") != "" || os.Getenv("BUS_TEST_EMULATED") != ""
}

// busCommand is `bus args...` as a real process.
func busCommand(args ...string) *exec.Cmd {
	argv := append(strings.Fields(os.Getenv("BUS_TEST_EXEC_PREFIX")), testBinary())
	cmd := exec.Command(argv[0], append(argv[1:], args...)...)
	cmd.Env = append(os.Environ(), asBus+"=1")
	return cmd
}

var (
	binOnce sync.Once
	binPath string
)

// testBinary is a copy of the test binary that any user may run (the go
// tool's build folder is private to root), for tests with another uid. It
// is made in $TMPDIR, the folder that TestMain removes after the run.
func testBinary() string {
	binOnce.Do(func() {
		binPath = os.Args[0]
		dir, err := os.MkdirTemp("", "bustest-bin")
		if err != nil {
			return
		}
		os.Chmod(dir, 0o755)
		data, err := os.ReadFile(os.Args[0])
		if err == nil && os.WriteFile(filepath.Join(dir, "bus"), data, 0o755) == nil {
			binPath = filepath.Join(dir, "bus")
		}
	})
	return binPath
}

// result is what a finished bus process did.
type result struct {
	code           int
	stdout, stderr string
}

// bus runs `bus args...` to the end (bounded), with stdin.
func bus(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := busCommand(args...)
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+xdgDir(t))
	return runCmd(t, cmd, stdin)
}

func runCmd(t *testing.T, cmd *exec.Cmd, stdin string) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", cmd.Args, err)
	}
	code, err := waitBounded(cmd, patience)
	if err != nil {
		t.Fatalf("%v: %v (stderr: %s)", cmd.Args, err, errb.String())
	}
	return result{code, out.String(), errb.String()}
}

// waitBounded waits for cmd to exit, killing it after d.
func waitBounded(cmd *exec.Cmd, d time.Duration) (int, error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), nil
		}
		return 0, err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return -1, fmt.Errorf("still running after %v: killed", d)
	}
}

func (r result) expect(t *testing.T, code int, stderr string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d (stdout %q, stderr %q)", r.code, code, r.stdout, r.stderr)
	}
	if stderr == "" && r.stderr != "" && code == 0 {
		t.Fatalf("unexpected stderr %q", r.stderr)
	}
	if !strings.Contains(r.stderr, stderr) {
		t.Fatalf("stderr %q does not say %q", r.stderr, stderr)
	}
	if code != 0 && code != 124 && code != 2 && strings.Count(r.stderr, "\n") != 1 && stderr != "" {
		t.Fatalf("stderr is not one line: %q", r.stderr)
	}
}

var (
	xdgMu   sync.Mutex
	xdgDirs = map[*testing.T]string{}
)

// xdgDir is the test's $XDG_RUNTIME_DIR, world-searchable so that children
// run as another user can reach buses in it.
func xdgDir(t *testing.T) string {
	xdgMu.Lock()
	defer xdgMu.Unlock()
	if d, ok := xdgDirs[t]; ok {
		return d
	}
	d, err := os.MkdirTemp("", "bustest")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	xdgDirs[t] = d
	t.Cleanup(func() {
		os.RemoveAll(d)
		xdgMu.Lock()
		delete(xdgDirs, t)
		xdgMu.Unlock()
	})
	return d
}

// newBus creates a bus for the test and removes it when the test ends.
func newBus(t *testing.T) string {
	t.Helper()
	path := filepath.Join(xdgDir(t), fmt.Sprintf("bus%d", time.Now().UnixNano()))
	if _, err := Create(path, true); err != nil {
		t.Fatal(err)
	}
	sem, shm, _, err := readBusFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		removeQuietly(path)
		checkGone(t, sem, shm)
	})
	return path
}

// checkGone fails t if the objects of keys sem and shm (a bus of the
// test's own, removed) are still there.
func checkGone(t *testing.T, sem, shm int32) {
	t.Helper()
	if _, e := semget(sem, 0, 0); e != syscall.ENOENT {
		t.Errorf("the semaphores of key %d are still there after the bus was removed (semget: %v)", sem, e)
	}
	if _, e := shmget(shm, 0, 0); e != syscall.ENOENT {
		t.Errorf("the shared memory of key %d is still there after the bus was removed (shmget: %v)", shm, e)
	}
}

func removeQuietly(path string) {
	if sem, shm, _, err := readBusFile(path); err == nil {
		removeObjects(sem, shm)
	}
	os.Remove(path)
}

// listener is a running `bus listen` or `bus wait`, registered.
type listener struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string // what it printed, line by line
	errb  *syncBuffer
	done  chan struct{}
	code  int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startListener starts `bus SUB -r 3 args...` and returns once it is
// registered (it wrote its ready line), so that no broadcast can be missed.
func startListener(t *testing.T, cred *syscall.Credential, sub string, args ...string) *listener {
	t.Helper()
	cmd := busCommand(append([]string{sub, "-r", "3"}, args...)...)
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+xdgDir(t))
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return startReady(t, cmd, sub)
}

// startReady starts cmd, which writes a newline to fd 3 once registered,
// and returns once it has (startListener, for any command).
func startReady(t *testing.T, cmd *exec.Cmd, what string) *listener {
	t.Helper()
	rr, rw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{rw}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{t: t, cmd: cmd, lines: make(chan string, 100000), errb: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = l.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	go func() {
		r := bufio.NewReaderSize(out, 4096)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if line != "" {
					l.lines <- line
				}
				break
			}
			l.lines <- strings.TrimSuffix(line, "\n")
		}
		l.code = exitCode(cmd.Wait())
		close(l.lines)
		close(l.done)
	}()
	t.Cleanup(func() { l.kill() })
	switch b, ok := readReady(rr); {
	case !ok:
		l.kill()
		t.Fatalf("%s not ready after %v; stderr: %s", what, patience, l.errb.String())
	case string(b) != "\n":
		l.kill()
		t.Fatalf("%s did not get ready: wrote %q; stderr: %s", what, b, l.errb.String())
	}
	return l
}

// readReady reads a -r FD signal from rr until the writer closes it, at
// most patience: what was written, and false if the bound ran out first.
func readReady(rr *os.File) ([]byte, bool) {
	ready := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(rr)
		rr.Close()
		ready <- b
	}()
	select {
	case b := <-ready:
		return b, true
	case <-time.After(patience):
		return nil, false
	}
}

func (l *listener) kill() {
	l.cmd.Process.Kill()
	select {
	case <-l.done:
	case <-time.After(patience):
		l.t.Errorf("listener %d did not die", l.cmd.Process.Pid)
	}
}

// next returns the next line the listener printed, failing after patience.
func (l *listener) next() string {
	l.t.Helper()
	select {
	case s, ok := <-l.lines:
		if !ok {
			l.t.Fatalf("listener exited (status %d) before printing; stderr: %s", l.code, l.errb.String())
		}
		return s
	case <-time.After(patience):
		l.t.Fatalf("no message after %v; stderr: %s", patience, l.errb.String())
	}
	return ""
}

// exit waits for the listener to exit by itself and returns its status.
func (l *listener) exit() int {
	l.t.Helper()
	select {
	case <-l.done:
		return l.code
	case <-time.After(patience):
		l.t.Fatalf("listener still running after %v", patience)
	}
	return 0
}

func semValue(t *testing.T, path string, i int) int {
	t.Helper()
	sem, _, _, err := readBusFile(path)
	if err != nil {
		t.Fatal(err)
	}
	id, e := semget(sem, nsems, 0)
	if e != 0 {
		t.Fatal(e)
	}
	v, e := semctl(id, i, semGetval, 0)
	if e != 0 {
		t.Fatal(e)
	}
	return v
}

func zombies(ppid int) int {
	n := 0
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(ppid) {
			n++
		}
	}
	return n
}

// checkIdle asserts the bus is at rest with listeners registered.
func checkIdle(t *testing.T, path string, listeners int) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		s, w, x, n := semValue(t, path, semS), semValue(t, path, semW), semValue(t, path, semX), semValue(t, path, semN)
		if s == listeners && w == 0 && x == 1 && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bus not at rest: S=%d W=%d X=%d N=%d, want S=%d W=0 X=1 N=0", s, w, x, n, listeners)
		}
		time.Sleep(time.Millisecond) // a listener re-arms right after its output
	}
}

func runAs(t *testing.T, cred *syscall.Credential, args ...string) result {
	t.Helper()
	cmd := busCommand(args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return runCmd(t, cmd, "")
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1000
}

func semID(t *testing.T, path string) int {
	t.Helper()
	sem, _, _, err := readBusFile(path)
	if err != nil {
		t.Fatal(err)
	}
	id, e := semget(sem, nsems, 0)
	if e != 0 {
		t.Fatal(e)
	}
	return id
}

// Proof under load, faults and bad input (issue 5): real processes
// broadcasting back to back, listeners and waiters joining and dying at
// random, writers killed mid-broadcast, listeners stopped, buses removed
// under their users, a Go rendering of the C tool's algorithm as a peer, and
// a corpus of bad command lines and bus files.

// writer is a running `bus broadcast ... PATH` fed from stdin, one message
// per line.
type writer struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	errb *syncBuffer
	done chan struct{}
	code int // exit status; -signal if killed
	sent int // lines handed to it, once the feeder has stopped
	fed  chan struct{}
}

// pipeHolds is how many bytes wait in the pipe of f (either end).
func pipeHolds(f *os.File) int {
	var n int32
	syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	return int(n)
}

// startWriter starts `bus broadcast args... PATH -` and feeds it "PID seq"
// lines from a goroutine: n of them, or, with n < 0, until stop is closed.
func startWriter(t *testing.T, path string, n int, stop <-chan struct{}, args ...string) *writer {
	t.Helper()
	cmd := busCommand(append(append([]string{"broadcast"}, args...), path, "-")...)
	pr, in, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Little in the pipe, so that what was fed is sent soon after stop:
	// the feeder keeps at most 1 KiB in it (about 80 messages). A pipe
	// holds 16 pages by default, 1 MiB with the 64 KiB pages of ppc64el
	// (TestChurn ran for 10 minutes there after stop); one page, 64 KiB
	// there, still holds 5,000 messages (TestChurn took 137 s of that
	// guest), and 4 KiB about 340.
	const pipeAhead = 1 << 10
	w := &writer{t: t, cmd: cmd, in: in, errb: &syncBuffer{}, done: make(chan struct{}), fed: make(chan struct{})}
	cmd.Stdin, cmd.Stderr = pr, w.errb
	err = cmd.Start()
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		w.code = exitCode(err)
		close(w.done)
	}()
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		<-w.done
		<-w.fed
	})
	go func() {
		defer close(w.fed)
		defer in.Close()
		bw := bufio.NewWriterSize(in, 64<<10)
		pid := cmd.Process.Pid
		for i := 0; n < 0 || i < n; i++ {
			if n < 0 && i%64 == 0 {
				for {
					select {
					case <-stop:
						w.sent = i
						bw.Flush()
						return
					case <-w.done: // killed (a failed test's cleanup): nothing reads on
						w.sent = -1
						return
					default:
					}
					if pipeHolds(in) <= pipeAhead {
						break
					}
					// Flow control, not a synchronisation: as a full pipe's
					// write would, it waits for the writer to read on.
					time.Sleep(scaled(time.Millisecond))
				}
				// Keep the pipe short, so that what was fed is what is sent
				// soon after stop, and the flush below does not block long.
				if err := bw.Flush(); err != nil {
					w.sent = -1
					return
				}
			}
			fmt.Fprintf(bw, "%d %d\n", pid, i)
		}
		if err := bw.Flush(); err != nil {
			w.sent = -1
			return
		}
		w.sent = n
	}()
	return w
}

// wait waits (bounded) for the writer to exit and for its feeder to stop.
func (w *writer) wait(d time.Duration) int {
	w.t.Helper()
	select {
	case <-w.done:
	case <-time.After(d):
		w.cmd.Process.Kill()
		<-w.done
		w.t.Fatalf("writer %d still running after %v; stderr: %s", w.cmd.Process.Pid, d, w.errb.String())
	}
	select {
	case <-w.fed:
	case <-time.After(patience):
		w.t.Fatalf("feeder of writer %d stuck", w.cmd.Process.Pid)
	}
	return w.code
}

// tally checks one listener's lines "PID seq": each writer's in order from
// 0, none twice. It reads until want lines came, the listener ended, or
// the deadline passed.
type tally struct {
	next  map[string]int // writer pid -> next seq expected
	total int
	err   error
}

func newTally() *tally { return &tally{next: map[string]int{}} }

func (y *tally) add(line string) {
	if y.err != nil {
		return
	}
	pid, seq, ok := strings.Cut(line, " ")
	n, err := strconv.Atoi(seq)
	if !ok || err != nil {
		y.err = fmt.Errorf("line %d is %q, not \"PID seq\"", y.total, line)
		return
	}
	if want := y.next[pid]; n != want {
		y.err = fmt.Errorf("from writer %s: message %d after %d (lost, doubled or out of order)", pid, n, want-1)
		return
	}
	y.next[pid] = n + 1
	y.total++
}

// collect feeds l's lines into a tally until it holds want lines; it
// returns the tally once done (or failed) on the channel.
func collect(l *listener, want int, d time.Duration) <-chan *tally {
	out := make(chan *tally, 1)
	go func() {
		y := newTally()
		timeout := time.After(d)
		for y.total < want && y.err == nil {
			select {
			case s, ok := <-l.lines:
				if !ok {
					y.err = fmt.Errorf("listener exited (status %d) after %d of %d messages; stderr: %s", l.code, y.total, want, l.errb.String())
					break
				}
				y.add(s)
			case <-timeout:
				y.err = fmt.Errorf("%d of %d messages after %v", y.total, want, d)
			}
		}
		out <- y
	}()
	return out
}

// spawnKill starts `bus args...` and SIGKILLs it after d, wherever it is
// (starting, joining, waiting, copying), then reaps it.
func spawnKill(t *testing.T, d time.Duration, args ...string) {
	t.Helper()
	cmd := busCommand(args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d) // a random kill point, not a synchronisation
	cmd.Process.Kill()
	if _, err := waitBounded(cmd, patience); err != nil {
		t.Fatal(err)
	}
}

// TestSprintf holds sprintf and errorf to what fmt makes of the same
// formats, for every verb bus uses.
func TestSprintf(t *testing.T) {
	errno := syscall.ENOENT
	for _, c := range []struct {
		format string
		args   []any
	}{
		{"plain", nil},
		{"%s: %d listener(s), %q", []any{"p", 3, "a \"b\"\n"}},
		{"key %d, id %d, %d %d", []any{int32(-5), uint32(7), int64(-9), uint64(1 << 40)}},
		{"/SYSV%08x", []any{uint32(0x1abc)}},
		{"/SYSV%08x", []any{uint32(0xdeadbeef)}},
		{"%c must be", []any{'g'}},
		{"%c!", []any{byte('x')}},
		{"after %v: %v", []any{1500 * time.Millisecond, errno}},
		{"100%% %s", []any{"done"}},
		{"%s and %s", []any{"one"}},
		{"%v", []any{nil}},
	} {
		want := fmt.Sprintf(c.format, c.args...)
		if c.format == "%s and %s" {
			want = "one and %!s(MISSING)"
		}
		if got := sprintf(c.format, c.args...); got != want {
			t.Errorf("sprintf(%q) = %q, want %q", c.format, got, want)
		}
	}
	err := errorf("%s: %d: %w; nothing sent", "p", 2, errno)
	if err.Error() != "p: 2: no such file or directory; nothing sent" || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("errorf wrapped %v, Is ENOENT %v", err, errors.Is(err, syscall.ENOENT))
	}
	if e, ok := as[syscall.Errno](errorf("outer: %w", errorf("inner: %w", errno))); !ok || e != errno {
		t.Errorf("as through two wraps = %v, %v", e, ok)
	}
	if _, ok := as[*usageError](errorf("x: %v", &usageError{msg: "u"})); ok {
		t.Errorf("%%v must not wrap")
	}
}
