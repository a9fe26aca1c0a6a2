package main

// End-to-end tests: the test binary re-executes itself as `bus` (as Go's own
// command tests do), with real semaphores. BUS_TEST_EXEC_PREFIX, if set, is
// prepended to every spawned command (a qemu runner, for other arches).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

const asBus = "BUS_TEST_AS_BUS"

// wait bounds every wait on a child in these tests.
const patience = 20 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(asBus) == "1" {
		main()
		return
	}
	before, err := sysvObjects()
	if err != nil {
		fmt.Fprintf(os.Stderr, "System V IPC is not usable here: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if binPath != os.Args[0] { // the copy testBinary made
		os.RemoveAll(filepath.Dir(binPath))
	}
	after, err := sysvObjects()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !slices.Equal(before, after) {
		fmt.Fprintf(os.Stderr, "FAIL: System V objects left behind or removed by the suite:\nbefore: %v\nafter:  %v\n", before, after)
		code = 1
	}
	os.Exit(code)
}

// sysvObjects lists every semaphore array and segment on the machine.
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
// tool's build folder is private to root), for tests with another uid.
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
	t.Cleanup(func() { removeQuietly(path) })
	return path
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
	ready := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(rr)
		rr.Close()
		ready <- b
	}()
	select {
	case b := <-ready:
		if string(b) != "\n" {
			l.kill()
			t.Fatalf("%s did not get ready: wrote %q; stderr: %s", what, b, l.errb.String())
		}
	case <-time.After(patience):
		l.kill()
		t.Fatalf("%s not ready after %v; stderr: %s", what, patience, l.errb.String())
	}
	return l
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

func TestCreateRandomPathAndRemove(t *testing.T) {
	r := bus(t, "", "create")
	r.expect(t, 0, "")
	path := strings.TrimSpace(r.stdout)
	dir := filepath.Join(xdgDir(t), "bus")
	if filepath.Dir(path) != dir || !strings.HasPrefix(filepath.Base(path), "random.") {
		t.Fatalf("path %q is not in %s", path, dir)
	}
	name := strings.TrimPrefix(filepath.Base(path), "random.")
	if len(name) != 30 || strings.Trim(name, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		t.Fatalf("random name %q is not 30 of [0-9a-zA-Z]", name)
	}
	t.Cleanup(func() { removeQuietly(path) })
	checkWireFormat(t, path)

	r = bus(t, "", "remove", path)
	r.expect(t, 0, "")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("bus file still there: %v", err)
	}
	data, _ := os.ReadFile(path)
	_ = data
}

// checkWireFormat checks a bus against protocol.md section 1, reading it
// as another program would: the file, then the objects by key.
func checkWireFormat(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("bus file %q is not two lines", data)
	}
	var keys [2]int64
	for i := range keys {
		keys[i], err = strconv.ParseInt(lines[i], 10, 64)
		if err != nil || keys[i] < 1 || keys[i] > 1<<30-1 || strconv.FormatInt(keys[i], 10) != lines[i] {
			t.Fatalf("line %d %q is not a decimal key in range", i+1, lines[i])
		}
	}
	sem := checkObject(t, "sem", lines[0], "5")
	for i, want := range []int{0, 0, 1, 0, 0} {
		if v, e := semctl(int(sem.id), i, semGetval, 0); e != 0 || v != want {
			t.Errorf("semaphore %d = %d (%v), want %d", i, v, e, want)
		}
	}
	checkObject(t, "shm", lines[1], "2048")
}

// checkObject checks, from /proc/sysvipc/KIND, that the object of key
// exists with mode 600 and the size (nsems or bytes) in column 4.
func checkObject(t *testing.T, kind, key, size string) procEntry {
	t.Helper()
	k, _ := strconv.ParseInt(key, 10, 32)
	o, ok := procObject(kind == "sem", int32(k))
	if !ok {
		t.Fatalf("no %s object of key %s", kind, key)
	}
	if o.perms&0o777 != 0o600 {
		t.Errorf("%s mode %o, want 600", kind, o.perms)
	}
	data, _ := os.ReadFile("/proc/sysvipc/" + kind)
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[0] == key && f[3] != size {
			t.Errorf("%s size %s, want %s", kind, f[3], size)
		}
	}
	return o
}

func TestCreateAtPath(t *testing.T) {
	path := filepath.Join(xdgDir(t), "b")
	t.Cleanup(func() { removeQuietly(path) })
	bus(t, "", "create", path).expect(t, 0, "")
	checkWireFormat(t, path)
	before, _ := os.ReadFile(path)
	bus(t, "", "create", path).expect(t, 0, "")
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("create on an existing bus changed it")
	}
	bus(t, "", "create", "-x", path).expect(t, 1, path+": already exists")
	bus(t, "", "-x", "create", path).expect(t, 1, "already exists")
}

func TestCreateNeverOverwrites(t *testing.T) {
	path := filepath.Join(xdgDir(t), "notes")
	os.WriteFile(path, []byte("my notes\n"), 0o644)
	objs, _ := sysvObjects()
	bus(t, "", "create", path).expect(t, 1, path+": not a bus file (line 1 is not a decimal key)")
	if data, _ := os.ReadFile(path); string(data) != "my notes\n" {
		t.Fatalf("file changed: %q", data)
	}
	bus(t, "", "create", filepath.Join(xdgDir(t), "no/such/dir/b")).expect(t, 1, "its folder "+filepath.Join(xdgDir(t), "no/such/dir")+" does not exist")
	if now, _ := sysvObjects(); !slices.Equal(objs, now) {
		t.Fatalf("a failed create left objects: %v -> %v", objs, now)
	}
}

func TestStaleBus(t *testing.T) {
	path := newBus(t)
	sem, shm, _, _ := readBusFile(path)
	removeObjects(sem, shm)
	bus(t, "", "broadcast", path, "x").expect(t, 1, "stale bus")
	bus(t, "", "listen", path).expect(t, 1, "stale bus")
	bus(t, "", "info", path).expect(t, 1, "stale bus")
	// create repairs it in place, keeping the file's mode.
	os.Chmod(path, 0o640)
	bus(t, "", "create", path).expect(t, 0, "")
	sem2, shm2, _, err := readBusFile(path)
	if err != nil || sem2 == sem || shm2 == shm {
		t.Fatalf("not repaired: %v %d %d", err, sem2, shm2)
	}
	if o, ok := procObject(true, sem2); !ok || o.perms&0o777 != 0o660 {
		t.Fatalf("repaired semaphores mode %o, want 660 from the file's 640", o.perms)
	}
	l := startListener(t, nil, "wait", path)
	bus(t, "", "broadcast", path, "0 repaired").expect(t, 0, "")
	if got := l.next(); got != "0 repaired" {
		t.Fatalf("got %q", got)
	}
	// remove removes a stale bus's file, with a note.
	sem, shm, _, _ = readBusFile(path)
	removeObjects(sem, shm)
	bus(t, "", "remove", path).expect(t, 0, "stale")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("stale bus file not removed")
	}
	bus(t, "", "remove", path).expect(t, 1, path+": no such bus file")
}

func TestBroadcastListen(t *testing.T) {
	path := newBus(t)
	l1 := startListener(t, nil, "listen", path)
	l2 := startListener(t, nil, "listen", path)
	bus(t, "", "broadcast", path, "1 hello").expect(t, 0, "")
	bus(t, "", "-n", "broadcast", path, "2 flags before").expect(t, 0, "")
	bus(t, "", "broadcast", "-n", "--", path, "-3 dash").expect(t, 0, "")
	bus(t, "", "broadcast", path, "").expect(t, 0, "")
	for _, l := range []*listener{l1, l2} {
		for _, want := range []string{"1 hello", "2 flags before", "-3 dash", ""} {
			if got := l.next(); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}
}

func TestBroadcastStdin(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	bus(t, "a\nb b\n\nlast", "broadcast", path).expect(t, 0, "")
	bus(t, "x\x00y\n\x00", "broadcast", "-0", path, "-").expect(t, 0, "")
	for _, want := range []string{"a", "b b", "", "last", "x", "y\n"} {
		if want == "y\n" { // a record holding a newline prints over two lines
			if got := l.next() + "\n" + l.next(); got != "y\n" {
				t.Fatalf("got %q, want %q", got, want)
			}
			continue
		}
		if got := l.next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// A bad line is reported and skipped, and the stream goes on (status
	// 1 at its end); a CRLF line loses its CR.
	long := strings.Repeat("x", 5000)
	r := bus(t, "ok1\n"+long+"\nok2\r\n\xff\nok3", "broadcast", path)
	if want := "bus: " + path + ": stdin line 2: message too long (at most 2047 bytes); not sent\nbus: " + path + ": stdin line 4: message is not valid UTF-8; not sent\n"; r.code != 1 || r.stderr != want {
		t.Fatalf("exit status %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	bus(t, "", "broadcast", path, "end").expect(t, 0, "")
	for _, want := range []string{"ok1", "ok2", "ok3", "end"} {
		if got := l.next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestBadMessagesSendNothing(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	max := strings.Repeat("é", 1023) + "x" // 2047 bytes
	bus(t, "", "broadcast", path, max+"y").expect(t, 1, "message too long (2048 bytes; at most 2047); nothing sent")
	bus(t, "", "broadcast", path, "bad \xc3").expect(t, 1, "not valid UTF-8")
	bus(t, "", "broadcast", path, max).expect(t, 0, "")
	if got := l.next(); got != max {
		t.Fatalf("got %d bytes, want the 2047-byte message", len(got))
	}
}

func TestWait(t *testing.T) {
	path := newBus(t)
	w := startListener(t, nil, "wait", path)
	bus(t, "", "broadcast", path, "42 ready").expect(t, 0, "")
	if got := w.next(); got != "42 ready" {
		t.Fatalf("got %q", got)
	}
	if code := w.exit(); code != 0 {
		t.Fatalf("wait exited %d", code)
	}
	// With COMMAND: $msg is set and wait exits with the command's status.
	w = startListener(t, nil, "wait", path, `echo "got $msg"; exit 7`)
	bus(t, "", "broadcast", path, "1 go").expect(t, 0, "")
	if got := w.next(); got != "got 1 go" {
		t.Fatalf("got %q", got)
	}
	if code := w.exit(); code != 7 {
		t.Fatalf("wait exited %d, want the command's 7", code)
	}
	// -m: the first match only; -0 ends it with NUL.
	w = startListener(t, nil, "wait", "-0", "-m", "^[0-9]+ ready$", path)
	bus(t, "", "broadcast", path, "1 starting").expect(t, 0, "")
	bus(t, "", "broadcast", path, "1 ready").expect(t, 0, "")
	w.exit()
	if got := w.next(); got != "1 ready\x00" {
		t.Fatalf("-0 printed %q", got)
	}
	// the listener is gone: a broadcast now has no one to wait for
	bus(t, "", "broadcast", "-t", "5s", path, "nobody").expect(t, 0, "")
	if v := semValue(t, path, semS); v != 0 {
		t.Fatalf("S = %d after wait exited", v)
	}
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

func TestListenCommandsInOrderNoZombies(t *testing.T) {
	path := newBus(t)
	out := filepath.Join(xdgDir(t), "out")
	l := startListener(t, nil, "listen", path, `echo "$msg" >> `+out)
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 60
	for i := range n {
		if _, err := b.Broadcast([]byte(strconv.Itoa(i)), time.Now().Add(patience), false); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(patience)
	for {
		data, _ := os.ReadFile(out)
		got := strings.Fields(string(data))
		if len(got) == n {
			slices.SortFunc(got, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
			for i, s := range got {
				if s != strconv.Itoa(i) {
					t.Fatalf("message %d missing or doubled: %v", i, got)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("commands ran for %d of %d messages", len(got), n)
		}
		time.Sleep(10 * time.Millisecond) // polling a file the commands write; bounded above
	}
	// Every child is reaped: none is left a zombie.
	for {
		z := zombies(l.cmd.Process.Pid)
		if z == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d zombie children of the listener", z)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// TestBurst is the case that deadlocks the C reference within a few
// messages: one process broadcasting back to back to 4 listeners.
func TestBurst(t *testing.T) {
	n := 10000
	path := newBus(t)
	var ls []*listener
	for range 4 {
		ls = append(ls, startListener(t, nil, "listen", path))
	}
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	errs := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			for i := range n {
				select {
				case s, ok := <-l.lines:
					if !ok || s != strconv.Itoa(i) {
						errs <- fmt.Errorf("listener %d: message %d is %q (open %v)", l.cmd.Process.Pid, i, s, ok)
						return
					}
				case <-time.After(patience):
					errs <- fmt.Errorf("listener %d: message %d never came", l.cmd.Process.Pid, i)
					return
				}
			}
			errs <- nil
		}()
	}
	start := time.Now()
	for i := range n {
		if _, err := b.Broadcast([]byte(strconv.Itoa(i)), time.Now().Add(patience), false); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	t.Logf("%d messages to %d listeners in %v", n, len(ls), time.Since(start))
	for range ls {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestKilledListeners: listeners killed with SIGKILL at random points
// mid-stream leave the bus working for the others.
func TestKilledListeners(t *testing.T) {
	path := newBus(t)
	steady := startListener(t, nil, "listen", path)
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		i := 0
		defer func() { sent <- i }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := b.Broadcast([]byte(strconv.Itoa(i)), time.Now().Add(patience), false); err != nil {
				t.Errorf("message %d: %v", i, err)
				return
			}
			i++
		}
	}()
	for k := range 20 {
		victim := startListener(t, nil, "listen", path)
		// Let it take a few messages, a different number each time.
		for range k % 5 {
			victim.next()
		}
		victim.kill()
	}
	close(stop)
	n := <-sent
	for i := range n {
		if got := steady.next(); got != strconv.Itoa(i) {
			t.Fatalf("steady listener: message %d is %q", i, got)
		}
	}
	if n == 0 {
		t.Fatal("nothing was broadcast")
	}
	checkIdle(t, path, 1)
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

// TestHandMadeBus: a bus made by another program following protocol.md
// section 1 (key file written by hand, objects made with raw calls) works.
func TestHandMadeBus(t *testing.T) {
	semid, e := semget(0x2a2a2a2, 5, ipcCreat|ipcExcl|0o600)
	if e != 0 {
		t.Fatal(e)
	}
	shmid, e := shmget(0x2a2a2a3, 2048, ipcCreat|ipcExcl|0o600)
	if e != 0 {
		semctl(semid, 0, ipcRmid, 0)
		t.Fatal(e)
	}
	t.Cleanup(func() { semctl(semid, 0, ipcRmid, 0); shmctl(shmid, ipcRmid, nil) })
	if _, e := semctl(semid, semX, semSetval, 1); e != 0 {
		t.Fatal(e)
	}
	path := filepath.Join(xdgDir(t), "handmade")
	os.WriteFile(path, []byte(fmt.Sprintf("%d\n%d\n", 0x2a2a2a2, 0x2a2a2a3)), 0o600)
	l := startListener(t, nil, "listen", path)
	bus(t, "", "broadcast", path, "7 hand made").expect(t, 0, "")
	if got := l.next(); got != "7 hand made" {
		t.Fatalf("got %q", got)
	}
	// The message is NUL-terminated at offset 0, as the C tool writes it.
	mem, e := shmat(shmid, shmRdonly, 2048)
	if e != 0 {
		t.Fatal(e)
	}
	defer shmdt(mem)
	if !bytes.HasPrefix(mem, []byte("7 hand made\x00")) {
		t.Fatalf("segment holds %q", mem[:16])
	}
	l.kill()
	bus(t, "", "remove", path).expect(t, 0, "")
	if _, ok := procObject(true, 0x2a2a2a2); ok {
		t.Fatal("remove left the semaphores")
	}
}

func TestBadBusFiles(t *testing.T) {
	dir := xdgDir(t)
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o600)
		return p
	}
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600)
	os.Symlink("loop2", filepath.Join(dir, "loop1"))
	os.Symlink("loop1", filepath.Join(dir, "loop2"))
	cases := []struct{ path, want string }{
		{filepath.Join(dir, "missing"), "no such bus file"},
		{filepath.Join(dir, "adir"), "is a directory, not a bus file"},
		{filepath.Join(dir, "fifo"), "not a bus file (not a regular file)"},
		{filepath.Join(dir, "loop1"), "too many levels of symbolic links"},
		{write("empty", ""), "not a bus file (empty)"},
		{write("one", "12\n"), "not a bus file (only one line)"},
		{write("words", "twelve\n13\n"), "not a bus file (line 1 is not a decimal key"},
		{write("neg", "-12\n13\n"), "not a bus file (line 1 is out of range"},
		{write("big", "12\n1073741824\n"), "not a bus file (line 2 is out of range"},
		{write("three", "12\n13\n14\n"), "not a bus file (more than two lines"},
		{write("nonl", "12\n13"), "not a bus file (line 2 is not ended by a newline"},
		{write("junk", "\x00\x01\x02\n\xff\n"), "not a bus file (line 1 is not a decimal key"},
	}
	for _, c := range cases {
		for _, args := range [][]string{{"broadcast", c.path, "x"}, {"listen", c.path}, {"remove", c.path}} {
			bus(t, "", args...).expect(t, 1, c.path+": "+c.want)
		}
	}
	gone := write("gone", "1000001\n1000002\n")
	for _, args := range [][]string{{"broadcast", gone, "x"}, {"listen", gone}, {"chmod", "u", gone}, {"info", gone}} {
		bus(t, "", args...).expect(t, 1, gone+": stale bus")
	}
}

func TestUsage(t *testing.T) {
	path := newBus(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no subcommand"},
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"broadcast"}, "missing operand\nusage: bus broadcast"},
		{[]string{"broadcast", path, "a", "b"}, `extra operand "b"`},
		{[]string{"broadcast", "-q", path, "a"}, "flag not known: -q"},
		{[]string{"listen", "-t", "soon", path}, `-t "soon": not a duration`},
		{[]string{"wait", "-t", "-1s", path}, "must be more than 0"},
		{[]string{"wait", "-m", "(", path}, "-m"},
		{[]string{"wait", "-r", "x", path}, "not a file descriptor number"},
		{[]string{"wait", "-r", "99", path}, "not an open file descriptor"},
		{[]string{"chmod", "rwx", path}, `permissions "rwx"`},
		{[]string{"chown", ":", path}, "no user name"},
		{[]string{"create", "-n"}, "flag not known: -n"},
		{[]string{"help", "nope"}, `no subcommand "nope"`},
	} {
		r := bus(t, "", c.args...)
		r.expect(t, 2, c.want)
	}
	r := bus(t, "", "help")
	r.expect(t, 0, "")
	for name := range subcommands {
		if !strings.Contains(r.stdout, "bus "+subcommands[name].synopsis) {
			t.Errorf("help lacks %s", name)
		}
		for _, args := range [][]string{{"help", name}, {name, "-h"}} {
			r := bus(t, "", args...)
			r.expect(t, 0, "")
			if !strings.HasPrefix(r.stdout, "usage: bus "+subcommands[name].synopsis) || !strings.Contains(r.stdout, "Example:") {
				t.Errorf("bus %v: %q", args, r.stdout)
			}
		}
	}
	bus(t, "", "-h").expect(t, 0, "")
}

func TestTimeouts(t *testing.T) {
	path := newBus(t)
	r := bus(t, "", "wait", "-t", "200ms", path)
	r.expect(t, 124, path+": timed out after 200ms: no message")
	r = bus(t, "", "wait", "-t", "200ms", "-m", "x", path)
	r.expect(t, 124, "no matching message")
	r = bus(t, "", "listen", "-t", "200ms", path)
	r.expect(t, 124, path+": timed out after 200ms (-t), having received 0 message(s)")
	if v := semValue(t, path, semS); v != 0 {
		t.Fatalf("S = %d after timed-out listeners", v)
	}
	// A stopped listener costs a broadcast its timeout, and no more.
	good := startListener(t, nil, "listen", path)
	stopped := startListener(t, nil, "listen", path)
	stopped.cmd.Process.Signal(syscall.SIGSTOP)
	defer stopped.cmd.Process.Signal(syscall.SIGCONT)
	r = bus(t, "", "broadcast", "-t", "300ms", path, "1 first")
	r.expect(t, 124, "timed out after 300ms: 1 listener(s) had not taken the message")
	if got := good.next(); got != "1 first" {
		t.Fatalf("got %q", got)
	}
	stopped.cmd.Process.Signal(syscall.SIGCONT)
	bus(t, "", "broadcast", "-t", "5s", path, "2 second").expect(t, 0, "")
	if got := good.next(); got != "2 second" {
		t.Fatalf("got %q", got)
	}
	if got := stopped.next(); got != "2 second" {
		t.Fatalf("continued listener got %q", got)
	}
}

func TestBusyNowait(t *testing.T) {
	path := newBus(t)
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Hold the writers' lock as a broadcaster in progress would.
	if err := b.semop(opTake, time.Time{}); err != nil {
		t.Fatal(err)
	}
	bus(t, "", "-n", "broadcast", path, "x").expect(t, 1, "busy: another process is broadcasting")
	bus(t, "", "broadcast", "-t", "100ms", path, "x").expect(t, 124, "nothing sent")
	b.semop(opUntake, time.Time{})
	bus(t, "", "broadcast", "-n", path, "x").expect(t, 0, "")
}

func TestRemoveWhileListening(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	bus(t, "", "remove", path).expect(t, 0, "")
	if code := l.exit(); code != 1 {
		t.Fatalf("listener exited %d, want 1", code)
	}
	if !strings.Contains(l.errb.String(), "the bus was removed") {
		t.Fatalf("stderr %q", l.errb.String())
	}
}

func TestChmodChown(t *testing.T) {
	path := newBus(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if os.Getuid() != 0 {
		t.Skip("needs root to run children as another user")
	}
	// Mode u: another user is refused, with the permission and the owner named.
	os.Chmod(path, 0o644) // let them read the keys: the objects still refuse
	r := runAs(t, nobody, "broadcast", path, "x")
	r.expect(t, 1, "permission denied: broadcasting needs read and write permission on the bus's semaphores, owned by root")
	r = runAs(t, nobody, "listen", path)
	r.expect(t, 1, "permission denied")

	bus(t, "", "chmod", "+o", path).expect(t, 0, "")
	checkModes(t, path, 0o604, 0o606)
	l := startListener(t, nobody, "listen", path)
	runAs(t, nobody, "broadcast", path, "1 from nobody").expect(t, 0, "")
	if got := l.next(); got != "1 from nobody" {
		t.Fatalf("got %q", got)
	}
	bus(t, "", "chmod", "g", path).expect(t, 0, "")
	checkModes(t, path, 0o040, 0o060)
	bus(t, "", "chmod", "750", path).expect(t, 0, "")
	checkModes(t, path, 0o640, 0o660)
	bus(t, "", "chmod", "u-g+o", path).expect(t, 0, "")
	checkModes(t, path, 0o604, 0o606)
	// Permissions that look like a flag, as the C tool takes them.
	bus(t, "", "chmod", "-o", path).expect(t, 0, "")
	checkModes(t, path, 0o600, 0o600)
	bus(t, "", "chmod", "-h", path).expect(t, 0, "")
	bus(t, "", "chmod", "+o", path).expect(t, 0, "")
	checkModes(t, path, 0o604, 0o606)

	bus(t, "", "chown", "65534:65534", path).expect(t, 0, "")
	checkOwner(t, path, 65534, 65534)
	bus(t, "", "chgrp", "0", path).expect(t, 0, "")
	checkOwner(t, path, 65534, 0)
	bus(t, "", "chown", "root", path).expect(t, 0, "")
	checkOwner(t, path, 0, 0)
	bus(t, "", "chown", "no-such-user-x", path).expect(t, 1, path+`: no such user "no-such-user-x"`)
	bus(t, "", "chgrp", "no-such-group-x", path).expect(t, 1, `no such group "no-such-group-x"`)
	// Only the owner may change it.
	runAs(t, nobody, "chmod", "666", path).expect(t, 1, "permission denied: only the bus's owner or root")
}

// TestOwnerNotRoot: what the owner of a bus who is not root may do to it.
// A stale bus they repair keeps its group (the new objects get the file's
// owner and group, so the group's members still get in), and a chown or
// chgrp the kernel refuses them changes nothing, objects included.
func TestOwnerNotRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run children as other users")
	}
	dir := filepath.Join(xdgDir(t), "owned")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(dir, 65534, 65534) // they may rewrite their bus file in it
	path := filepath.Join(dir, "bus")
	owner := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{1}}
	member := &syscall.Credential{Uid: 2, Gid: 1}
	runAs(t, owner, "create", path).expect(t, 0, "")
	t.Cleanup(func() { removeQuietly(path) })
	runAs(t, owner, "chgrp", "1", path).expect(t, 0, "")
	runAs(t, owner, "chmod", "ug", path).expect(t, 0, "")

	runAs(t, owner, "chown", "0", path).expect(t, 1, path+": permission denied: only root may give a bus to another user; its owner (")
	runAs(t, owner, "chgrp", "3", path).expect(t, 1, "may give it only to a group they are in")
	checkOwner(t, path, 65534, 1)

	sem, shm, _, err := readBusFile(path)
	if err != nil {
		t.Fatal(err)
	}
	removeObjects(sem, shm) // as a reboot does
	runAs(t, owner, "create", path).expect(t, 0, "")
	checkOwner(t, path, 65534, 1)
	l := startListener(t, member, "listen", path)
	runAs(t, member, "broadcast", path, "0 after the repair").expect(t, 0, "")
	if got := l.next(); got != "0 after the repair" {
		t.Fatalf("got %q", got)
	}
}

// TestReadyFDBroken: a listener that cannot write its ready signal (the
// reader is gone) says so and leaves the bus as it joined it: it must not
// take back a W it never took, which would hang it and let a writer over
// another listener's copy.
func TestReadyFDBroken(t *testing.T) {
	path := newBus(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	defer pw.Close()
	cmd := busCommand("listen", "-r", "3", path)
	cmd.ExtraFiles = []*os.File{pw}
	r := runCmd(t, cmd, "")
	r.expect(t, 1, "bus: -r 3: writing the ready signal: broken pipe")
	if s, w := semValue(t, path, semS), semValue(t, path, semW); s != 0 || w != 0 {
		t.Fatalf("left S=%d W=%d, want 0 0", s, w)
	}
	bus(t, "", "broadcast", "-t", "5s", path, "0 still works").expect(t, 0, "")
}

// TestStuckReader: a listener whose reader stopped reading (its pipe is
// full) must not stop the bus. It re-arms before it blocks on the write,
// so writers go on delivering to every other listener and give up on it
// at -t; holding W, it would stop them all before they publish.
func TestStuckReader(t *testing.T) {
	path := newBus(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close() // never read
	rr, rw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stuck := busCommand("listen", "-r", "3", path)
	stuck.Stdout, stuck.ExtraFiles = pw, []*os.File{rw}
	if err := stuck.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stuck.Process.Kill(); stuck.Wait() })
	rw.Close()
	pw.Close()
	ready := make(chan error, 1)
	go func() { _, err := rr.Read(make([]byte, 1)); ready <- err }()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("the stuck listener never got ready: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("the stuck listener never got ready")
	}
	healthy := startListener(t, nil, "listen", path)
	// Two messages to a pipe page, 16 pages: the pipe is full after 32.
	body := strings.Repeat("x", 2000)
	var in strings.Builder
	for i := range 40 {
		fmt.Fprintf(&in, "%d %s\n", i, body)
	}
	r := bus(t, in.String(), "broadcast", "-t", "300ms", path)
	r.expect(t, 124, "1 listener(s) had not taken the message")
	for i := range 40 {
		if got, want := healthy.next(), fmt.Sprintf("%d %s", i, body); got != want {
			t.Fatalf("message %d: got %.20q..., want %.20q...", i, got, want)
		}
	}
}

// TestCommandsStartedBeforeReturn: once a broadcast returns, the command
// of every listener that ran one has started, as with the C tool: a
// listener killed right after a stream (a service stopping) drops none.
func TestCommandsStartedBeforeReturn(t *testing.T) {
	path := newBus(t)
	out := filepath.Join(t.TempDir(), "out")
	l := startListener(t, nil, "listen", path, `echo "$msg" >> `+out)
	const n = 60 // a start takes 70 ms under qemu-aarch64 (its vfork is a fork)
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "0 m%d\n", i)
	}
	bus(t, in.String(), "broadcast", path).expect(t, 0, "")
	l.cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(patience); ; time.Sleep(10 * time.Millisecond) {
		data, _ := os.ReadFile(out)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) >= n {
			for i := range n {
				if !slices.Contains(lines, fmt.Sprintf("0 m%d", i)) {
					t.Fatalf("no command ran for message %d", i)
				}
			}
			if len(lines) != n {
				t.Fatalf("%d commands ran, want %d", len(lines), n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d commands ran after the listener was killed", len(lines), n)
		}
	}
}

// TestWaitCommandDetached: bus wait, once it has its message, is off the
// bus while its command runs: info lists no process attached.
func TestWaitCommandDetached(t *testing.T) {
	path := newBus(t)
	gate := filepath.Join(t.TempDir(), "gate")
	l := startListener(t, nil, "wait", path, `i=0; while [ ! -e `+gate+` ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; echo "$msg"`)
	bus(t, "", "broadcast", path, "0 go").expect(t, 0, "")
	for deadline := time.Now().Add(patience); ; time.Sleep(10 * time.Millisecond) {
		r := bus(t, "", "info", path)
		if strings.Contains(r.stdout, "\n0 process(es) attached") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bus wait still attached while its command runs:\n%s", r.stdout)
		}
	}
	os.WriteFile(gate, nil, 0o600)
	if got := l.next(); got != "0 go" {
		t.Fatalf("got %q", got)
	}
	if code := l.exit(); code != 0 {
		t.Fatalf("wait exited %d", code)
	}
}

// TestTerminalTostop: a background listener printing to a terminal with
// tostop is stopped (SIGTTOU) by its first write. It must have re-armed
// by then, as for a stuck reader: writers deliver to the others and give
// up on it at -t, where stopped holding W it stopped them all.
func TestTerminalTostop(t *testing.T) {
	path := newBus(t)
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var unlock, n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	screen := &syncBuffer{}
	go io.Copy(screen, ptmx) // the terminal's screen
	// A job-control shell on the terminal runs the listener in the
	// background and tells its pid on fd 4; fd 3 is the ready signal. It
	// stays (a sleep): were the session leader gone, the kernel would
	// hang up the stopped listener's orphaned process group.
	rr, rw, _ := os.Pipe()
	pr, pw, _ := os.Pipe()
	listen := busCommand("listen", "-r", "3", path) // its argv: under qemu, with the prefix
	sh := exec.Command("sh", append([]string{"-c", `stty tostop && set -m && { "$@" & echo $! >&4; exec sleep 1000; }`, "sh"}, listen.Args...)...)
	sh.Env = listen.Env
	sh.Stdin, sh.Stdout, sh.Stderr = pts, pts, pts
	sh.ExtraFiles = []*os.File{rw, pw}
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	pw.Close()
	var pid int
	t.Cleanup(func() {
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		sh.Process.Kill()
		sh.Wait()
	})
	got := make(chan string, 2)
	go func() { line, _ := bufio.NewReader(pr).ReadString('\n'); got <- line }()
	go func() { b := make([]byte, 1); n, _ := rr.Read(b); got <- strings.Repeat("ready", n) }()
	for range 2 {
		select {
		case s := <-got:
			if s != "ready" {
				if pid, err = strconv.Atoi(strings.TrimSpace(s)); err != nil {
					t.Fatalf("no pid from the shell: %q", s)
				}
			}
		case <-time.After(patience):
			t.Fatalf("the background listener never got ready; the terminal shows %q", screen.String())
		}
	}
	healthy := startListener(t, nil, "listen", path)
	bus(t, "", "broadcast", path, "0 first").expect(t, 0, "")
	for deadline := time.Now().Add(patience); ; time.Sleep(time.Millisecond) {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if f := strings.Fields(string(data)); len(f) > 2 && f[2] == "T" {
			break // stopped by its write
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background listener was never stopped: %q", data)
		}
	}
	bus(t, "", "broadcast", "-t", "300ms", path, "0 second").expect(t, 124, "1 listener(s) had not taken the message")
	for _, want := range []string{"0 first", "0 second"} {
		if got := healthy.next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestLongTimeout: a -t beyond 2^31 seconds waits (for 68 years at a time)
// where 32-bit kernels refused its tv_sec with EINVAL, which read as "the
// bus was removed". TestArches runs it on the 32-bit architectures.
func TestLongTimeout(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", "-t", "600000h", path)
	bus(t, "", "broadcast", "-t", "600000h", path, "0 long").expect(t, 0, "")
	if got := l.next(); got != "0 long" {
		t.Fatalf("got %q", got)
	}
}

// TestCommandStdin: a command reads the listener's stdin, as the C tool's
// fork leaves it; a listener started with stdin closed gives it /dev/null,
// never a closed fd 0 (the next file the command opened would become it).
func TestCommandStdin(t *testing.T) {
	path := newBus(t)
	for _, closed := range []bool{false, true} {
		cmd := busCommand("wait", "-r", "3", path, `read line; echo "$msg: $line $(readlink /proc/$$/fd/0)"`)
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+xdgDir(t))
		want := "0 m: from stdin pipe:"
		cmd.Stdin = strings.NewReader("from stdin\n")
		if closed {
			cmd.Args = append([]string{"sh", "-c", `exec "$@" <&-`, "sh"}, cmd.Args...)
			cmd.Path, want = "/bin/sh", "0 m:  /dev/null"
		}
		l := startReady(t, cmd, "wait")
		bus(t, "", "broadcast", path, "0 m").expect(t, 0, "")
		if got := l.next(); !strings.HasPrefix(got, want) {
			t.Fatalf("stdin closed %v: got %q, want %q", closed, got, want)
		}
		if code := l.exit(); code != 0 {
			t.Fatalf("wait exited %d: %s", code, l.errb.String())
		}
	}
}

func runAs(t *testing.T, cred *syscall.Credential, args ...string) result {
	t.Helper()
	cmd := busCommand(args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return runCmd(t, cmd, "")
}

func checkModes(t *testing.T, path string, file, objects uint32) {
	t.Helper()
	st, _ := os.Stat(path)
	if uint32(st.Mode().Perm()) != file {
		t.Errorf("file mode %o, want %o", st.Mode().Perm(), file)
	}
	sem, shm, _, _ := readBusFile(path)
	for _, isSem := range []bool{true, false} {
		key := shm
		if isSem {
			key = sem
		}
		if o, _ := procObject(isSem, key); o.perms&0o777 != objects {
			t.Errorf("object mode %o, want %o", o.perms&0o777, objects)
		}
	}
}

func checkOwner(t *testing.T, path string, uid, gid uint32) {
	t.Helper()
	var st syscall.Stat_t
	syscall.Stat(path, &st)
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("file owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	sem, shm, _, _ := readBusFile(path)
	for _, isSem := range []bool{true, false} {
		key := shm
		if isSem {
			key = sem
		}
		if o, _ := procObject(isSem, key); o.uid != uid || o.gid != gid {
			t.Errorf("object owner %d:%d, want %d:%d", o.uid, o.gid, uid, gid)
		}
	}
}

func TestInfo(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	l.cmd.Process.Signal(syscall.SIGSTOP)
	defer l.cmd.Process.Signal(syscall.SIGCONT)
	r := bus(t, "", "info", path)
	r.expect(t, 0, "")
	for _, want := range []string{"1 registered", "none in progress", "mode rw-------", strconv.Itoa(l.cmd.Process.Pid), "STOPPED"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}
}

// BenchmarkBroadcast: one in-process writer, real `bus listen` processes
// printing to a file; one op is one message delivered to every listener.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("listeners=%d", n), func(b *testing.B) {
			t := &testing.T{}
			_ = t
			path := benchBus(b)
			for range n {
				benchListener(b, path, "listen", path)
			}
			bus, err := Open(path, false)
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close()
			msg := []byte("0 benchmark message")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := bus.Broadcast(msg, time.Now().Add(patience), false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkListenLoop runs a listener's loop in-process against an
// in-process writer: allocs/op counts both sides, per message.
func BenchmarkListenLoop(b *testing.B) {
	path := benchBus(b)
	lb, err := Open(path, true)
	if err != nil {
		b.Fatal(err)
	}
	defer lb.Close()
	wb, err := Open(path, false)
	if err != nil {
		b.Fatal(err)
	}
	defer wb.Close()
	if err := lb.Join(time.Time{}); err != nil {
		b.Fatal(err)
	}
	msg := []byte("0 benchmark message")
	done := make(chan error, 1)
	var buf [shmSize + 1]byte // escapes (io.Discard): allocated here, once
	// Started before the timer: the goroutine's start allocates too, once;
	// the writer waits for the listener's loop to take its first message.
	go func() {
		for range b.N {
			if _, err := wb.Broadcast(msg, time.Time{}, false); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n, err := lb.Next((*[shmSize]byte)(buf[:shmSize]), time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		if err := lb.Stay(time.Time{}); err != nil {
			b.Fatal(err)
		}
		buf[n] = '\n'
		io.Discard.Write(buf[:n+1])
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	lb.semop(opCountOut, time.Time{})
}

func benchBus(b *testing.B) string {
	dir := b.TempDir()
	path := filepath.Join(dir, "bus")
	if _, err := Create(path, true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { removeQuietly(path) })
	return path
}

// benchListener starts a bus process and waits until it is registered.
func benchListener(b *testing.B, path string, args ...string) *exec.Cmd {
	b.Helper()
	cmd := busCommand(append([]string{args[0], "-r", "3"}, args[1:]...)...)
	out, err := os.Create(filepath.Join(b.TempDir(), "out"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout = out
	rr, rw, _ := os.Pipe()
	cmd.ExtraFiles = []*os.File{rw}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	rw.Close()
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); out.Close() })
	ready := make(chan struct{})
	go func() { io.ReadAll(rr); close(ready) }()
	select {
	case <-ready:
	case <-time.After(patience):
		b.Fatal("listener not ready")
	}
	return cmd
}

// TestReadyIsNeverEarly: a broadcast sent as soon as the ready line arrives
// reaches the listener, every time.
func TestReadyIsNeverEarly(t *testing.T) {
	path := newBus(t)
	for i := range 20 {
		w := startListener(t, nil, "wait", path)
		bus(t, "", "broadcast", "-t", "10s", path, fmt.Sprintf("%d now", i)).expect(t, 0, "")
		if got := w.next(); got != fmt.Sprintf("%d now", i) {
			t.Fatalf("round %d: got %q", i, got)
		}
		if code := w.exit(); code != 0 {
			t.Fatalf("wait exited %d", code)
		}
	}
}

func TestListenFilter(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", "-m", "^[0-9]+ (up|down) eth[0-9]$", path)
	all := startListener(t, nil, "-0", "listen", path)
	for _, m := range []string{"1 up eth0", "1 up wlan0", "2 noise", "3 down eth1"} {
		bus(t, "", "broadcast", path, m).expect(t, 0, "")
	}
	for _, want := range []string{"1 up eth0", "3 down eth1"} {
		if got := l.next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// -0 ends messages with NUL; a message may hold a newline, which ends
	// the test's read.
	bus(t, "", "broadcast", path, "end\n").expect(t, 0, "")
	if got := all.next(); got != "1 up eth0\x001 up wlan0\x002 noise\x003 down eth1\x00end" {
		t.Fatalf("-0 printed %q", got)
	}
}

// The yardstick: ../shared/bench/refproto.c, the C harness of the same
// protocol, built with cc -O2, measured side by side with this tool in one
// run, alternating, so that the machine's load falls on both alike.

func buildRefproto(b *testing.B) string {
	b.Helper()
	src, err := filepath.Abs("../shared/bench/refproto.c")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(src); err != nil {
		b.Fatalf("the yardstick's source is not beside the project: %v", err)
	}
	out := filepath.Join(b.TempDir(), "refproto")
	if msg, err := exec.Command("cc", "-O2", "-o", out, src).CombinedOutput(); err != nil {
		b.Fatalf("cc: %v: %s", err, msg)
	}
	return out
}

// buildBus builds the real binary, as users get it.
func buildBus(b *testing.B) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "bus")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v: %s", err, msg)
	}
	return out
}

// waitListeners waits until n listeners are registered on path.
func waitListeners(b *testing.B, path string, n int) {
	b.Helper()
	sem, _, _, err := readBusFile(path)
	if err != nil {
		b.Fatal(err)
	}
	id, _ := semget(sem, nsems, 0)
	deadline := time.Now().Add(patience)
	for {
		if v, _ := semctl(id, semS, semGetval, 0); v == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d listeners not registered after %v", n, patience)
		}
		time.Sleep(time.Millisecond) // polling S, bounded above
	}
}

// timeRun runs cmd to its end and returns how long it took.
func timeRun(b *testing.B, cmd *exec.Cmd) time.Duration {
	b.Helper()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if code, err := waitBounded(cmd, 5*time.Minute); err != nil || code != 0 {
		b.Fatalf("%v: status %d, %v: %s", cmd.Args, code, err, errb.String())
	}
	return time.Since(start)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkYardstick: 20,000 messages from one writer process (`bus
// broadcast` reading stdin; `refproto write`) to L listener processes
// (`bus listen` writing to files; `refproto listen`), each round both ways,
// and a third way with the bus listeners writing to /dev/null: refproto
// writes nothing, and at 16 listeners on 2 cores the 16 file writes a
// message are most of the difference (go-null/c isolates the protocol).
// Reports the medians in us per message and their ratios. Run with
// -benchtime=5x for five rounds.
func BenchmarkYardstick(b *testing.B) {
	const n = 20000
	ref, bin := buildRefproto(b), buildBus(b)
	dir := b.TempDir()
	input := filepath.Join(dir, "input")
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "0 msg %d\n", i)
	}
	os.WriteFile(input, in.Bytes(), 0o600)
	for _, listeners := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("listeners=%d", listeners), func(b *testing.B) {
			path := benchBus(b)
			var goUs, cUs, nullUs, ratios, nullRatios []float64
			for range b.N {
				// C: listeners stop at the message "0 stop" and print their count.
				var cl []*exec.Cmd
				var outs []*bytes.Buffer
				for range listeners {
					c := exec.Command(ref, "listen", path)
					out := &bytes.Buffer{}
					c.Stdout = out
					if err := c.Start(); err != nil {
						b.Fatal(err)
					}
					cl, outs = append(cl, c), append(outs, out)
				}
				waitListeners(b, path, listeners)
				c := timeRun(b, exec.Command(ref, "write", path, strconv.Itoa(n)))
				for i, l := range cl {
					if code, err := waitBounded(l, patience); err != nil || code != 0 || strings.TrimSpace(outs[i].String()) != strconv.Itoa(n) {
						b.Fatalf("refproto listener: %d %v, got %q messages", code, err, outs[i].String())
					}
				}
				// Go: the real binary, listeners printing to files, then
				// to /dev/null.
				g := goRound(b, bin, path, input, dir, listeners, n, false)
				null := goRound(b, bin, path, input, dir, listeners, n, true)
				goUs = append(goUs, float64(g.Microseconds())/n)
				nullUs = append(nullUs, float64(null.Microseconds())/n)
				cUs = append(cUs, float64(c.Microseconds())/n)
				ratios = append(ratios, float64(g)/float64(c))
				nullRatios = append(nullRatios, float64(null)/float64(c))
			}
			b.ReportMetric(median(goUs), "go-us/msg")
			b.ReportMetric(median(cUs), "c-us/msg")
			b.ReportMetric(median(ratios), "go/c")
			b.ReportMetric(slices.Max(ratios), "worst-go/c")
			b.ReportMetric(median(nullUs), "go-null-us/msg")
			b.ReportMetric(median(nullRatios), "go-null/c")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// goRound times `bus broadcast` of the n lines of input to listeners
// `bus listen` processes writing to files in dir (or to /dev/null), and
// checks that each file got every message.
func goRound(b *testing.B, bin, path, input, dir string, listeners, n int, devNull bool) time.Duration {
	var gl []*exec.Cmd
	var files []string
	for i := range listeners {
		f := filepath.Join(dir, fmt.Sprintf("out%d", i))
		if devNull {
			f = os.DevNull
		}
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		l := exec.Command(bin, "listen", path)
		l.Stdout = out
		if err := l.Start(); err != nil {
			b.Fatal(err)
		}
		out.Close()
		gl, files = append(gl, l), append(files, f)
	}
	waitListeners(b, path, listeners)
	w := exec.Command(bin, "broadcast", path)
	w.Stdin, _ = os.Open(input)
	g := timeRun(b, w)
	for i, l := range gl {
		l.Process.Kill()
		l.Wait()
		if devNull {
			continue // the writer returned: every listener copied every message
		}
		data, _ := os.ReadFile(files[i])
		if bytes.Count(data, []byte{'\n'}) != n {
			b.Fatalf("bus listener got %d messages of %d", bytes.Count(data, []byte{'\n'}), n)
		}
	}
	return g
}

// BenchmarkOneShot: `bus broadcast PATH MSG` as a whole process (start,
// open, broadcast to one listener, exit) against `refproto send PATH MSG`,
// alternating, and the least Go program (testdata/floor/oneshot.go).
// Reports the medians in us per process and their ratios, over 20 runs of
// each per iteration.
func BenchmarkOneShot(b *testing.B) {
	ref, bin := buildRefproto(b), buildBus(b)
	path := benchBus(b)
	l := exec.Command(bin, "listen", path)
	if err := l.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Process.Kill(); l.Wait() })
	waitListeners(b, path, 1)
	floor := buildFloor(b, "oneshot")
	var goUs, cUs, floorUs []float64
	for range b.N * 20 { // a process is a short, noisy sample: take many
		cUs = append(cUs, float64(timeRun(b, exec.Command(ref, "send", path, "0 one shot")).Nanoseconds())/1e3)
		goUs = append(goUs, float64(timeRun(b, exec.Command(bin, "broadcast", path, "0 one shot")).Nanoseconds())/1e3)
		floorUs = append(floorUs, float64(timeRun(b, exec.Command(floor)).Nanoseconds())/1e3)
	}
	b.ReportMetric(median(goUs), "go-us/run")
	b.ReportMetric(median(cUs), "c-us/run")
	b.ReportMetric(median(goUs)/median(cUs), "go/c")
	b.ReportMetric(median(floorUs), "floor-us/run")
	b.ReportMetric(median(floorUs)/median(cUs), "floor/c")
	b.ReportMetric(0, "ns/op")
}

// buildFloor builds testdata/floor/NAME.go as bus is built: a Go program
// that does only what no Go build of bus could avoid, to measure bus against.
func buildFloor(b *testing.B, name string) string {
	b.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "floor", name+".go"))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module floor\n\ngo 1.22\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "main.go"), src, 0o600)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", name, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v: %s", err, msg)
	}
	return filepath.Join(dir, name)
}

// BenchmarkFootprint reports the binary's size (-trimpath -ldflags='-s -w')
// and the resident memory of a listener after b.N messages, printing to a
// file and, in another, running a command for each; and beside it, that of
// the least Go program that starts as many (floor-cmd).
func BenchmarkFootprint(b *testing.B) {
	bin := buildBus(b)
	st, _ := os.Stat(bin)
	path := benchBus(b)
	var ls []*exec.Cmd
	for _, args := range [][]string{{"listen", path}, {"listen", path, "true"}} {
		l := exec.Command(bin, args...)
		if err := l.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Process.Kill(); l.Wait() })
		ls = append(ls, l)
	}
	waitListeners(b, path, 2)
	bb, err := Open(path, false)
	if err != nil {
		b.Fatal(err)
	}
	defer bb.Close()
	// At least 2,000 messages, so 2,000 commands: what a long-running
	// listener holds, not what a fresh one does.
	b.ResetTimer()
	for i := range max(b.N, 2000) {
		if _, err := bb.Broadcast([]byte("0 footprint "+strconv.Itoa(i)), time.Now().Add(patience), false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	status := func(pid int, field string) float64 {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
				v, _ := strconv.ParseFloat(f[1], 64)
				return v
			}
		}
		b.Fatalf("no %s for %d", field, pid)
		return 0
	}
	// The floor: the same count of starts by a Go program with only what
	// bus cannot do without (testdata/floor/runner.go).
	floor := exec.Command(buildFloor(b, "runner"), strconv.Itoa(max(b.N, 2000)), "footprint", "1s")
	hold, err := floor.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := floor.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := floor.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { floor.Process.Kill(); floor.Wait() })
	done := make(chan error, 1)
	go func() { _, err := bufio.NewReader(out).ReadString('\n'); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			b.Fatalf("the floor program: %v", err)
		}
	case <-time.After(patience):
		b.Fatal("the floor program never finished its starts")
	}
	b.ReportMetric(float64(st.Size())/1e6, "binary-MB")
	b.ReportMetric(status(ls[0].Process.Pid, "VmRSS"), "listen-RSS-KiB")
	b.ReportMetric(status(ls[1].Process.Pid, "VmRSS"), "listen-cmd-RSS-KiB")
	b.ReportMetric(status(ls[1].Process.Pid, "VmHWM"), "listen-cmd-peak-KiB")
	b.ReportMetric(status(ls[1].Process.Pid, "RssFile"), "listen-cmd-file-KiB")
	b.ReportMetric(status(floor.Process.Pid, "VmRSS"), "floor-cmd-RSS-KiB")
	hold.Close()
	b.ReportMetric(0, "ns/op")
}

// TestSegmentWithoutNUL: a listener never trusts the segment. A peer that
// fills all 2048 bytes with no NUL gets exactly those 2048 bytes delivered.
func TestSegmentWithoutNUL(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The writer's steps by hand, with a segment a careless peer wrote.
	deadline := time.Now().Add(patience)
	if err := b.semop(opTake, deadline); err != nil {
		t.Fatal(err)
	}
	if err := b.semop(opPublish, deadline); err != nil {
		t.Fatal(err)
	}
	for i := range b.mem {
		b.mem[i] = 'x'
	}
	if err := b.setQ0(); err != nil {
		t.Fatal(err)
	}
	if err := b.semop(opFinish, deadline); err != nil {
		t.Fatal(err)
	}
	if got := l.next(); got != strings.Repeat("x", 2048) {
		t.Fatalf("got %d bytes, want 2048", len(got))
	}
	bus(t, "", "broadcast", path, "0 after").expect(t, 0, "")
	if got := l.next(); got != "0 after" {
		t.Fatalf("got %q", got)
	}
}

// TestStreamGoesOnAfterTimeout: a stdin stream reports a message that timed
// out and goes on; the status is 124 at the end.
func TestStreamGoesOnAfterTimeout(t *testing.T) {
	path := newBus(t)
	good := startListener(t, nil, "listen", path)
	stopped := startListener(t, nil, "listen", path)
	stopped.cmd.Process.Signal(syscall.SIGSTOP)
	defer stopped.cmd.Process.Signal(syscall.SIGCONT)
	r := bus(t, "1 a\n2 b\n", "broadcast", "-t", "200ms", path)
	r.expect(t, 124, "bus: stdin line 1: "+path+": timed out after 200ms: 1 listener(s) had not taken the message\n")
	if !strings.Contains(r.stderr, "stdin line 2: ") {
		t.Fatalf("line 2 not reported: %q", r.stderr)
	}
	for _, want := range []string{"1 a", "2 b"} {
		if got := good.next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestIdleListenerSleeps: a listener with nothing to receive sleeps. Its
// raw wait used to hold its P to the end, so the runtime's preemption
// signal woke it 100 times a second, and its sysmon thread as often.
func TestIdleListenerSleeps(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	switches := func() int {
		n := 0
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", l.cmd.Process.Pid))
		for _, task := range tasks {
			data, _ := os.ReadFile(task)
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) == 2 && strings.HasSuffix(f[0], "ctxt_switches:") {
					v, _ := strconv.Atoi(f[1])
					n += v
				}
			}
		}
		return n
	}
	// The runtime winds down after start (sysmon backs off from 20 us to
	// sleeping): wait, bounded, for a quiet 100 ms, then count over 1 s.
	// The old wait was never quiet: about 200 switches a second.
	deadline := time.Now().Add(patience)
	for last := switches(); ; {
		time.Sleep(100 * time.Millisecond)
		n := switches()
		if n == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an idle listener never stopped being woken: %d switches in the last 100 ms", n-last)
		}
		last = n
	}
	before := switches()
	time.Sleep(time.Second)
	if n := switches() - before; n > 5 {
		t.Errorf("an idle listener was switched to %d times in 1 s", n)
	}
	bus(t, "", "broadcast", path, "0 still listening").expect(t, 0, "")
	if got := l.next(); got != "0 still listening" {
		t.Fatalf("got %q", got)
	}
}

// TestGateDoesNotLeak: writers that time out before publishing (a listener
// holds W: stopped between its release and its re-arm) must leave Q as they
// found it. Closing the gate when taking X, as protocol.md section 4 first
// had it, left one more on Q per timed-out writer; after 32,767 of them
// (SEMVMX) every writer and every listener failed with ERANGE, for good.
func TestGateDoesNotLeak(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", path)
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q := semValue(t, path, semQ)
	// Hold W as a listener stopped between release and re-arm would.
	if err := b.semop([]sembuf{{semW, 1, semUndo}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		bus(t, "", "broadcast", "-t", "20ms", path, "x").expect(t, 124, "nothing sent")
	}
	if got := semValue(t, path, semQ); got != q {
		t.Fatalf("Q went from %d to %d over 5 writers that timed out before publishing", q, got)
	}
	// Near SEMVMX, the bus still works once W is given back.
	if _, e := semctl(b.semid, semQ, semSetval, 32766); e != 0 {
		t.Fatal(e)
	}
	for range 3 {
		bus(t, "", "broadcast", "-t", "20ms", path, "x").expect(t, 124, "nothing sent")
	}
	if err := b.semop([]sembuf{{semW, -1, semUndo}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	bus(t, "", "broadcast", "-t", "5s", path, "0 still works").expect(t, 0, "")
	if got := l.next(); got != "0 still works" {
		t.Fatalf("got %q", got)
	}
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

// startWriter starts `bus broadcast args... PATH` and feeds it "PID seq"
// lines from a goroutine: n of them, or, with n < 0, until stop is closed.
func startWriter(t *testing.T, path string, n int, stop <-chan struct{}, args ...string) *writer {
	t.Helper()
	cmd := busCommand(append(append([]string{"broadcast"}, args...), path)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, cmd: cmd, in: in, errb: &syncBuffer{}, done: make(chan struct{}), fed: make(chan struct{})}
	cmd.Stderr = w.errb
	if err := cmd.Start(); err != nil {
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
				select {
				case <-stop:
					w.sent = i
					bw.Flush()
					return
				default:
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

// TestStressWriters: 4 writer processes broadcast back to back into 16
// listener processes; every listener gets every message exactly once, in
// each writer's order.
func TestStressWriters(t *testing.T) {
	writers, listeners, each := 4, 16, 25000
	if testing.Short() {
		each = 250 // the inner runs of TestArches, under qemu, are short
	}
	path := newBus(t)
	var ls []*listener
	for range listeners {
		ls = append(ls, startListener(t, nil, "listen", path))
	}
	total := writers * each
	var tallies []<-chan *tally
	for _, l := range ls {
		tallies = append(tallies, collect(l, total, 150*time.Second))
	}
	start := time.Now()
	var ws []*writer
	for range writers {
		ws = append(ws, startWriter(t, path, each, nil))
	}
	for _, w := range ws {
		if code := w.wait(150 * time.Second); code != 0 || w.sent != each {
			t.Fatalf("writer %d: exit status %d, fed %d of %d; stderr: %s", w.cmd.Process.Pid, code, w.sent, each, w.errb.String())
		}
	}
	elapsed := time.Since(start)
	for i, c := range tallies {
		y := <-c
		if y.err != nil {
			t.Fatalf("listener %d: %v", i, y.err)
		}
		for _, w := range ws {
			if got := y.next[strconv.Itoa(w.cmd.Process.Pid)]; got != each {
				t.Fatalf("listener %d: %d messages from writer %d, want %d", i, got, w.cmd.Process.Pid, each)
			}
		}
	}
	checkIdle(t, path, listeners)
	for i, l := range ls {
		select {
		case s := <-l.lines:
			t.Fatalf("listener %d: extra line %q", i, s)
		default:
		}
	}
	t.Logf("%d writers x %d messages = %d, to %d listeners: %v (%.1f µs a message, %d deliveries)",
		writers, each, total, listeners, elapsed.Round(time.Millisecond), float64(elapsed.Microseconds())/float64(total), total*listeners)
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

// TestChurn: while writers broadcast, listeners and one-shot waiters join
// and are SIGKILLed at random points, hundreds of times. Writers (with -t)
// never time out, steady listeners miss nothing, and the bus ends at rest.
func TestChurn(t *testing.T) {
	rounds := 400
	if testing.Short() {
		rounds = 25
	}
	path := newBus(t)
	steady := []*listener{startListener(t, nil, "listen", path), startListener(t, nil, "listen", path)}
	stop := make(chan struct{})
	ws := []*writer{
		startWriter(t, path, -1, stop, "-t", "5s"),
		startWriter(t, path, -1, stop, "-t", "5s"),
	}
	// Drain the steady listeners while the churn runs; check them after.
	var mu sync.Mutex
	tallies := make([]*tally, len(steady))
	drained := make(chan struct{}, len(steady))
	for i, l := range steady {
		tallies[i] = newTally()
		go func() {
			for s := range l.lines {
				mu.Lock()
				tallies[i].add(s)
				mu.Unlock()
			}
			drained <- struct{}{}
		}()
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	t.Logf("seed time-based; rounds %d", rounds)
	kinds := map[string]int{}
	start := time.Now()
	for range rounds {
		switch k := rng.IntN(5); k {
		case 0: // a listener, registered, killed after some messages
			kinds["listen registered"]++
			l := startListener(t, nil, "listen", path)
			for range rng.IntN(4) {
				l.next()
			}
			l.kill()
		case 1: // a waiter, registered, killed at a random moment (or done)
			kinds["wait registered"]++
			l := startListener(t, nil, "wait", path)
			time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
			l.kill()
		case 2: // a waiter that never matches, registered, killed
			kinds["wait -m registered"]++
			l := startListener(t, nil, "wait", "-m", "^never$", path)
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Microsecond)
			l.kill()
		case 3: // a listener killed anywhere from its start on
			kinds["listen anywhere"]++
			spawnKill(t, time.Duration(rng.IntN(8000))*time.Microsecond, "listen", path)
		case 4: // a waiter killed anywhere from its start on
			kinds["wait anywhere"]++
			spawnKill(t, time.Duration(rng.IntN(8000))*time.Microsecond, "wait", path)
		}
	}
	close(stop)
	for _, w := range ws {
		if code := w.wait(patience); code != 0 || w.sent <= 0 {
			t.Fatalf("writer %d: exit status %d (fed %d); stderr: %s", w.cmd.Process.Pid, code, w.sent, w.errb.String())
		}
	}
	elapsed := time.Since(start)
	// Every message fed was sent; the steady listeners must have them all.
	want := 0
	for _, w := range ws {
		want += w.sent
	}
	deadline := time.Now().Add(patience)
	for {
		mu.Lock()
		done := true
		for i, y := range tallies {
			if y.err != nil {
				mu.Unlock()
				t.Fatalf("steady listener %d: %v", i, y.err)
			}
			if y.total < want {
				done = false
			}
		}
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("steady listeners have %d and %d of %d messages", tallies[0].total, tallies[1].total, want)
		}
		time.Sleep(time.Millisecond) // polling the drain goroutines; bounded above
	}
	checkIdle(t, path, len(steady))
	if q := semValue(t, path, semQ); q != len(steady) {
		t.Errorf("at rest Q = %d, want one arm per steady listener (%d)", q, len(steady))
	}
	for _, l := range steady {
		l.kill()
	}
	for range steady {
		<-drained
	}
	for i, y := range tallies {
		if y.err != nil || y.total != want {
			t.Fatalf("steady listener %d: %d of %d messages, %v", i, y.total, want, y.err)
		}
		for _, w := range ws {
			if got := y.next[strconv.Itoa(w.cmd.Process.Pid)]; got != w.sent {
				t.Fatalf("steady listener %d: %d messages from writer %d, want %d", i, got, w.cmd.Process.Pid, w.sent)
			}
		}
	}
	t.Logf("%d joins and kills %v in %v; %d messages sent by %d writers, all received by %d steady listeners",
		rounds, kinds, elapsed.Round(time.Millisecond), want, len(ws), len(steady))
}

// TestFaults: a writer killed mid-broadcast, a listener stopped and
// continued, a bus removed under its listeners, waiters and a writer.
func TestFaults(t *testing.T) {
	t.Run("writer killed mid-broadcast", testWriterKilled)
	t.Run("listener stopped", testListenerStopped)
	t.Run("bus removed", testBusRemoved)
}

func testWriterKilled(t *testing.T) {
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	path := newBus(t)
	var ls []*listener
	for range 3 {
		ls = append(ls, startListener(t, nil, "listen", path))
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range rounds {
		stop := make(chan struct{})
		w := startWriter(t, path, -1, stop)
		pid := strconv.Itoa(w.cmd.Process.Pid)
		// Kill it once the first listener has some of its messages.
		k := 1 + rng.IntN(300)
		first := newTally()
		for first.total < k {
			first.add(ls[0].next())
			if first.err != nil {
				t.Fatalf("round %d: listener 0: %v", round, first.err)
			}
		}
		w.cmd.Process.Signal(syscall.SIGKILL)
		close(stop)
		if code := w.wait(patience); code != -int(syscall.SIGKILL) {
			t.Fatalf("round %d: writer exit status %d, want killed", round, code)
		}
		// Broadcasting still works, and every listener gets it after the
		// dead writer's messages: a prefix of them, none twice.
		end := fmt.Sprintf("end %d", round)
		bus(t, "", "broadcast", "-t", "5s", path, end).expect(t, 0, "")
		counts := make([]int, len(ls))
		for i, l := range ls {
			y := newTally()
			if i == 0 {
				y = first
			}
			for {
				s := l.next()
				if s == end {
					break
				}
				if y.add(s); y.err != nil {
					t.Fatalf("round %d: listener %d: %v", round, i, y.err)
				}
			}
			counts[i] = y.next[pid]
		}
		// The writer finishes a message only once every listener took it:
		// at most its last one can be missing from some of them.
		if slices.Max(counts)-slices.Min(counts) > 1 {
			t.Fatalf("round %d: the listeners got %v of the killed writer's messages", round, counts)
		}
		checkIdle(t, path, len(ls))
		t.Logf("round %d: killed after listener 0 had %d; they got %v", round, k, counts)
	}
}

func testListenerStopped(t *testing.T) {
	path := newBus(t)
	good := []*listener{startListener(t, nil, "listen", path), startListener(t, nil, "listen", path)}
	victim := startListener(t, nil, "listen", path)
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Stream from this process until the victim is stopped: each broadcast
	// gives up after 300ms, so the stream ends cleanly once it is.
	type outcome struct {
		msg    string
		missed int
		err    error
	}
	results := make(chan []outcome, 1)
	go func() {
		var out []outcome
		for i := 0; ; i++ {
			msg := "0 " + strconv.Itoa(i)
			missed, err := b.Broadcast([]byte(msg), time.Now().Add(300*time.Millisecond), false)
			out = append(out, outcome{msg, missed, err})
			if err != nil || i > 1000000 {
				break
			}
		}
		results <- out
	}()
	k := 1 + rand.IntN(200)
	for range k {
		victim.next()
	}
	victim.cmd.Process.Signal(syscall.SIGSTOP)
	defer victim.cmd.Process.Signal(syscall.SIGCONT)
	var streamed []outcome
	select {
	case streamed = <-results:
	case <-time.After(patience):
		t.Fatal("the stream did not stop while the victim was stopped")
	}
	last := streamed[len(streamed)-1]
	if last.err != errTimeout {
		t.Fatalf("stream ended with %v, want a timeout", last.err)
	}
	// What the good listeners must have got: every message sent in full,
	// and a timed-out one if it was released (missed >= 0).
	var delivered []string
	for _, o := range streamed {
		if o.err == nil || o.missed >= 0 {
			delivered = append(delivered, o.msg)
		}
		if o.err != nil && o.missed > 1 {
			t.Fatalf("%q: %d listeners missed it, only one is stopped", o.msg, o.missed)
		}
	}
	// While it is stopped, writers with -t fail cleanly: it holds either its
	// count (the message goes to the others) or W (nothing is sent).
	for i := range 3 {
		msg := "stopped " + strconv.Itoa(i)
		r := bus(t, "", "broadcast", "-t", "200ms", path, msg)
		switch {
		case r.code == 124 && strings.Contains(r.stderr, "1 listener(s) had not taken the message"):
			delivered = append(delivered, msg)
		case r.code == 124 && strings.Contains(r.stderr, "nothing sent"):
		default:
			t.Fatalf("broadcast with a stopped listener: status %d, stderr %q", r.code, r.stderr)
		}
	}
	victim.cmd.Process.Signal(syscall.SIGCONT)
	for i := range 3 {
		msg := "continued " + strconv.Itoa(i)
		bus(t, "", "broadcast", "-t", "5s", path, msg).expect(t, 0, "")
		delivered = append(delivered, msg)
	}
	for i, l := range good {
		for _, want := range delivered {
			if got := l.next(); got != want {
				t.Fatalf("good listener %d: got %q, want %q", i, got, want)
			}
		}
	}
	// The victim: what it had, then what it got after, in order, none twice,
	// ending with everything sent after it continued.
	var got []string
	for !slices.Contains(got, "continued 2") {
		got = append(got, victim.next())
	}
	pos := 0
	for _, s := range got {
		j := slices.Index(delivered[pos:], s)
		if j < 0 {
			t.Fatalf("victim: %q out of order or twice (got %q)", s, got)
		}
		pos += j + 1
	}
	if !slices.Equal(got[len(got)-3:], []string{"continued 0", "continued 1", "continued 2"}) {
		t.Fatalf("victim missed messages sent after it continued: %q", got[max(0, len(got)-5):])
	}
	checkIdle(t, path, 3)
	t.Logf("stopped after %d messages; stream of %d ended with missed=%d", k, len(streamed), last.missed)
}

func testBusRemoved(t *testing.T) {
	path := newBus(t)
	var ls []*listener
	// The first two get the writer's message; the third holds W after it,
	// waiting for the round to end; the waiters wait for another.
	for _, args := range [][]string{
		{"listen", path},
		{"listen", "-t", "1h", path},
		{"listen", "-m", "^x", path},
		{"wait", "-m", "^never", path},
		{"wait", "-t", "1h", "-m", "^never", path},
		{"wait", "-m", "^never", path, "echo $msg"},
	} {
		ls = append(ls, startListener(t, nil, args[0], args[1:]...))
	}
	// A listener stopped while armed, and a writer waiting for it.
	stopped := startListener(t, nil, "listen", path)
	stopped.cmd.Process.Signal(syscall.SIGSTOP)
	defer stopped.cmd.Process.Signal(syscall.SIGCONT)
	w := busCommand("broadcast", path, "0 never taken")
	var werr bytes.Buffer
	w.Stderr = &werr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Process.Kill() })
	// The writer published; the running listeners took the message, counted
	// out and wait for the round to end (listen prints after it), and only
	// the stopped one is still counted.
	id := semID(t, path)
	deadline := time.Now().Add(patience)
	for {
		x, n, s, w := semValue(t, path, semX), semValue(t, path, semN), semValue(t, path, semS), semValue(t, path, semW)
		if zn, _ := semctl(id, semN, semGetz, 0); x == 0 && n == 1 && s == 1 && w == len(ls) && zn == len(ls) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the round never reached the stopped listener: X=%d N=%d S=%d W=%d", x, n, s, w)
		}
		time.Sleep(time.Millisecond)
	}
	// One more joins now and waits for the round to end to get in.
	joiner := busCommand("listen", path)
	var jerr bytes.Buffer
	joiner.Stderr = &jerr
	if err := joiner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { joiner.Process.Kill() })
	for n, _ := semctl(id, semX, semGetn, 0); n != 1; n, _ = semctl(id, semX, semGetn, 0) {
		if time.Now().After(deadline) {
			t.Fatalf("%d processes waiting for X, want the joiner", n)
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	bus(t, "", "remove", path).expect(t, 0, "")
	stopped.cmd.Process.Signal(syscall.SIGCONT)
	code, err := waitBounded(w, 5*time.Second)
	if err != nil || code != 1 || werr.String() != "bus: "+path+": the bus was removed\n" {
		t.Fatalf("writer: status %d (%v), stderr %q; want 1, the bus was removed", code, err, werr.String())
	}
	code, err = waitBounded(joiner, 5*time.Second)
	if err != nil || code != 1 || jerr.String() != "bus: "+path+": the bus was removed\n" {
		t.Fatalf("joining listener: status %d (%v), stderr %q; want 1, the bus was removed", code, err, jerr.String())
	}
	for i, l := range append(ls, stopped) {
		select {
		case <-l.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%v still running 5s after the bus was removed", l.cmd.Args[1:])
		}
		if l.code != 1 || l.errb.String() != "bus: "+path+": the bus was removed\n" {
			t.Fatalf("%d %v: status %d, stderr %q; want 1, the bus was removed", i, l.cmd.Args[1:], l.code, l.errb.String())
		}
		// Not a spin: it slept until told. (Under qemu, starting up alone
		// takes most of a second of CPU.)
		limit := time.Second
		if os.Getenv("BUS_TEST_EXEC_PREFIX") != "" {
			limit = 5 * time.Second
		}
		if cpu := l.cmd.ProcessState.UserTime() + l.cmd.ProcessState.SystemTime(); cpu > limit {
			t.Fatalf("%v used %v of CPU", l.cmd.Args[1:], cpu)
		}
	}
	t.Logf("every user of the bus exited within %v of its removal", time.Since(start).Round(time.Millisecond))
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

// The C tool's algorithm (protocol.md section 2), for a peer that behaves
// as a C program would: each step its own semop call, with the C code's
// SEM_UNDO flags (libbus.c, bus_read and bus_write).

// refListenerEnv makes the test binary a reference listener of the bus it
// names: it joins, writes a newline to fd 3 (if open) once registered, and
// prints each message on stdout, one a line, until killed or the bus fails.
// With refLateEnv (a duration) it spins that long between P(W) and V(Q),
// so that it arms after the writer's release every time: the worst case of
// R1, which only the writer's re-release gets it out of.
const (
	refListenerEnv = "BUS_TEST_REF_LISTENER"
	refLateEnv     = "BUS_TEST_REF_LATE"
)

func init() {
	if path := os.Getenv(refListenerEnv); path != "" {
		os.Exit(refListenerMain(path))
	}
}

func refListenerMain(path string) int {
	b, err := Open(path, true)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bus: %v\n", err)
		return 1
	}
	b.raw = true // nothing else runs here: as fast as a C listener can be
	late, _ := time.ParseDuration(os.Getenv(refLateEnv))
	out := bufio.NewWriterSize(os.Stdout, shmSize+1)
	err = refListen(b, late, func() {
		if f := os.NewFile(3, "ready"); f != nil {
			f.Write([]byte{'\n'})
			f.Close()
		}
	}, func(msg []byte) error {
		out.Write(msg)
		out.WriteByte('\n')
		return out.Flush()
	})
	fmt.Fprintf(os.Stderr, "bus: %v\n", err)
	return 1
}

// refOp is one semaphore operation in a call of its own, retried on EINTR.
func refOp(b *Bus, sem int, op int16, flg int16, deadline time.Time) error {
	return b.semop([]sembuf{{uint16(sem), op, flg}}, deadline)
}

// refListen is bus_read: V(S) UNDO; loop { V(Q); Z(Q); read; V(W) UNDO;
// P(S) UNDO; Z(S); Z(N); V(S) UNDO; P(W) UNDO }, spinning for late before
// each V(Q) but the first. It returns only on error.
func refListen(b *Bus, late time.Duration, ready func(), got func(msg []byte) error) error {
	var never time.Time
	if err := refOp(b, semS, 1, semUndo, never); err != nil {
		return err
	}
	ready()
	var buf [shmSize]byte
	for first := true; ; first = false {
		if late > 0 && !first {
			for start := time.Now(); time.Since(start) < late; {
			}
		}
		steps := []struct {
			sem     int
			op, flg int16
		}{{semQ, 1, 0}, {semQ, 0, 0}}
		for _, s := range steps {
			if err := refOp(b, s.sem, s.op, s.flg, never); err != nil {
				return err
			}
		}
		copy(buf[:], b.mem)
		n := bytes.IndexByte(buf[:], 0)
		if n < 0 {
			n = shmSize
		}
		if err := got(buf[:n]); err != nil {
			return err
		}
		for _, s := range []struct {
			sem     int
			op, flg int16
		}{{semW, 1, semUndo}, {semS, -1, semUndo}, {semS, 0, 0}, {semN, 0, 0}, {semS, 1, semUndo}, {semW, -1, semUndo}} {
			if err := refOp(b, s.sem, s.op, s.flg, never); err != nil {
				return err
			}
		}
	}
}

// refBroadcast is bus_write: P(X) UNDO; Z(W); write; V(N) UNDO; Q := 0;
// Z(S); P(N) UNDO; V(X) UNDO. Each wait gives up after wait (which the C
// code's bus_write does not: it would hang), undoing as its fail path does.
func refBroadcast(b *Bus, msg []byte, wait time.Duration) error {
	var never time.Time
	if err := refOp(b, semX, -1, semUndo, time.Now().Add(wait)); err != nil {
		return err
	}
	fail := func(err error, heldN bool) error {
		if heldN {
			refOp(b, semN, -1, semUndo, never)
		}
		refOp(b, semX, 1, semUndo, never)
		return err
	}
	if err := refOp(b, semW, 0, 0, time.Now().Add(wait)); err != nil {
		return fail(err, false)
	}
	n := copy(b.mem[:maxMessage], msg)
	b.mem[n] = 0
	if err := refOp(b, semN, 1, semUndo, never); err != nil {
		return fail(err, false)
	}
	if err := b.setQ0(); err != nil {
		return fail(err, true)
	}
	if err := refOp(b, semS, 0, 0, time.Now().Add(wait)); err != nil {
		return fail(err, true)
	}
	if err := refOp(b, semN, -1, semUndo, never); err != nil {
		return fail(err, false)
	}
	return refOp(b, semX, 1, semUndo, never)
}

// startRefListener runs a reference listener as a process of its own and
// returns once it has joined.
func startRefListener(t *testing.T, path string) *listener {
	t.Helper()
	argv := append(strings.Fields(os.Getenv("BUS_TEST_EXEC_PREFIX")), testBinary())
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), refListenerEnv+"="+path)
	return startReady(t, cmd, "reference listener")
}

// broadcastLoop broadcasts "0", "1", ... n-1 back to back from this
// process with this project's writer, and returns the time a message took.
func broadcastLoop(t *testing.T, path string, n int) time.Duration {
	t.Helper()
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	start := time.Now()
	for i := range n {
		if _, err := b.Broadcast([]byte(strconv.Itoa(i)), time.Now().Add(patience), false); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	return time.Since(start) / time.Duration(n)
}

// expectSequence checks that l printed "0" ... n-1, in order, once each.
func expectSequence(t *testing.T, l *listener, n int) {
	t.Helper()
	for i := range n {
		if got := l.next(); got != strconv.Itoa(i) {
			t.Fatalf("message %d: got %q", i, got)
		}
	}
}

// TestReferenceListener: this project's writer, broadcasting back to back,
// delivers every message to a C-algorithm listener (which arms late, after
// giving W back, so that most messages need a re-release), and the bus
// ends at rest.
func TestReferenceListener(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	path := newBus(t)
	ref := startRefListener(t, path)
	per := broadcastLoop(t, path, n)
	expectSequence(t, ref, n)
	checkIdle(t, path, 1)
	t.Logf("%d messages to one reference listener: %.1f µs a message (re-release after %v, doubling to %v)",
		n, float64(per.Nanoseconds())/1e3, rereleaseFirst, rereleaseMax)
}

// TestReferenceLateListener: a C-algorithm listener that arms after every
// release (R1 each time) still gets every message from this project's
// writer, by the re-release.
func TestReferenceLateListener(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	path := newBus(t)
	argv := append(strings.Fields(os.Getenv("BUS_TEST_EXEC_PREFIX")), testBinary())
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), refListenerEnv+"="+path, refLateEnv+"=20us")
	ref := startReady(t, cmd, "late reference listener")
	per := broadcastLoop(t, path, n)
	expectSequence(t, ref, n)
	checkIdle(t, path, 1)
	t.Logf("%d messages to a reference listener that always arms late: %.1f µs a message (re-release after %v)",
		n, float64(per.Nanoseconds())/1e3, rereleaseFirst)
}

// TestReferenceDeadlock: the reference writer and the reference listener
// together reach race R1 (protocol.md section 3): the listener arms after
// the writer's release and waits in Z(Q), the writer waits in Z(S). It
// shows that the peer is faithful to the C algorithm, whose flaw this
// project's protocol removes.
func TestReferenceDeadlock(t *testing.T) {
	path := newBus(t)
	ref := startRefListener(t, path)
	// Once it is armed, the first message reaches it: a stall is R1 proper
	// (a late arm after P(W)), not a join racing the first message.
	id := semID(t, path)
	deadline := time.Now().Add(patience)
	for z, _ := semctl(id, semQ, semGetz, 0); z != 1; z, _ = semctl(id, semQ, semGetz, 0) {
		if time.Now().After(deadline) {
			t.Fatal("the reference listener never armed")
		}
		time.Sleep(time.Millisecond)
	}
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const limit = 20000
	stall := 500 * time.Millisecond
	if os.Getenv("BUS_TEST_EXEC_PREFIX") != "" {
		stall = 5 * time.Second // under qemu, slowness alone can last 500 ms
	}
	start := time.Now()
	sent := 0
	for ; sent < limit; sent++ {
		err = refBroadcast(b, []byte(strconv.Itoa(sent)), stall)
		if err != nil {
			break
		}
	}
	if err != errTimeout {
		t.Fatalf("the reference writer and listener did not deadlock in %d messages (%v): %v", sent, time.Since(start), err)
	}
	// R1: the listener armed late (Q = 1) and waits for a zero that came
	// before; the writer waited for S = 0 and gave up (its fail path gave N
	// and X back). The listener got every message up to the stalled one.
	// The listener may still be on its way into Z(Q) (slow under qemu).
	zq, _ := semctl(id, semQ, semGetz, 0)
	for deadline := time.Now().Add(patience); zq != 1 && time.Now().Before(deadline); zq, _ = semctl(id, semQ, semGetz, 0) {
		time.Sleep(time.Millisecond)
	}
	q, s, x, nn := semValue(t, path, semQ), semValue(t, path, semS), semValue(t, path, semX), semValue(t, path, semN)
	if q != 1 || zq != 1 || s != 1 || x != 1 || nn != 0 {
		t.Fatalf("stalled with Q=%d (waiting for 0: %d) S=%d X=%d N=%d; want R1's Q=1 (1 waiting) S=1, X=1 N=0 after the writer gave up", q, zq, s, x, nn)
	}
	expectSequence(t, ref, sent) // never the one it armed too late for
	t.Logf("R1 at message %d (%v)", sent, time.Since(start).Round(time.Millisecond))
	ref.kill()
}

// TestMixedReferenceR2: one C-algorithm listener beside one of ours can be
// locked by race R2, whatever the writer: ours re-arms (S +1) as soon as the
// round ends, and a C listener that had not yet reached its Z(S) then waits
// for a zero that is gone, holding W, so that no writer can publish again.
// protocol.md's table names R2 only among two or more C listeners. The C
// listener is played here step by step from this process, so that the
// interleaving is forced, not hoped for.
func TestMixedReferenceR2(t *testing.T) {
	path := newBus(t)
	ours := startListener(t, nil, "listen", path)
	c, err := Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	id := semID(t, path)
	var never time.Time
	step := func(sem int, op, flg int16) {
		t.Helper()
		if err := refOp(c, sem, op, flg, time.Now().Add(patience)); err != nil {
			t.Fatalf("C listener, semaphore %d op %d: %v", sem, op, err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(patience)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	step(semS, 1, semUndo) // join
	step(semQ, 1, 0)       // arm
	done := make(chan error, 1)
	go func() {
		_, err := w.Broadcast([]byte("0 first"), time.Now().Add(patience), false)
		done <- err
	}()
	step(semQ, 0, 0) // released
	if got := string(c.mem[:7]); got != "0 first" {
		t.Fatalf("C listener read %q", got)
	}
	step(semW, 1, semUndo) // enter reset
	// Ours has copied and counted out, and waits for the round to end.
	waitFor("our listener counted out", func() bool { z, _ := semctl(id, semN, semGetz, 0); return z == 1 })
	step(semS, -1, semUndo) // count out: S = 0, the writer finishes
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Ours re-armed at once (S = 1) and waits for the next release, before
	// the C listener got to its Z(S).
	waitFor("our listener re-armed", func() bool { z, _ := semctl(id, semQ, semGetz, 0); return z == 1 })
	if err := refOp(c, semS, 0, 0, time.Now().Add(300*time.Millisecond)); err != errTimeout {
		t.Fatalf("C listener's Z(S): %v, want it stuck (S = %d)", err, semValue(t, path, semS))
	}
	// Stuck holding W: the next broadcast cannot publish.
	if missed, err := w.Broadcast([]byte("0 second"), time.Now().Add(300*time.Millisecond), false); err != errTimeout || missed != -1 {
		t.Fatalf("broadcast with the C listener stuck in Z(S): missed %d, %v; want nothing sent", missed, err)
	}
	if got := ours.next(); got != "0 first" {
		t.Fatalf("ours got %q", got)
	}
	// The C listener's own way out: its Z(S) never returns, so this is where
	// a C program hangs. Let it go on by hand, and the bus works again.
	for _, s := range []struct {
		sem     int
		op, flg int16
	}{{semN, 0, 0}, {semS, 1, semUndo}, {semW, -1, semUndo}, {semS, -1, semUndo}} {
		if err := refOp(c, s.sem, s.op, s.flg, never); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Broadcast([]byte("0 third"), time.Now().Add(patience), false); err != nil {
		t.Fatal(err)
	}
	if got := ours.next(); got != "0 third" {
		t.Fatalf("ours got %q", got)
	}
	checkIdle(t, path, 1)
}

// BenchmarkRerelease: this project's writer, in a loop, to listener
// processes of ours or of the C algorithm (the re-release wait matters to
// the latter). ns/op is the time a message takes.
func BenchmarkRerelease(b *testing.B) {
	for _, c := range []struct {
		name      string
		ours, ref int
		late      string
	}{{"ours-1", 1, 0, ""}, {"ours-4", 4, 0, ""}, {"ours-16", 16, 0, ""}, {"ref-1", 0, 1, ""}, {"ref-late-1", 0, 1, "20us"}} {
		b.Run(c.name, func(b *testing.B) { benchBroadcast(b, c.ours, c.ref, c.late) })
	}
}

func benchBroadcast(b *testing.B, ours, ref int, late string) {
	dir := b.TempDir()
	path := filepath.Join(dir, "bus")
	if _, err := Create(path, true); err != nil {
		b.Fatal(err)
	}
	defer removeQuietly(path)
	var cmds []*exec.Cmd
	counts := make(chan error, ours+ref)
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for i := range ours + ref {
		argv := append(strings.Fields(os.Getenv("BUS_TEST_EXEC_PREFIX")), testBinary())
		cmd := exec.Command(argv[0], argv[1:]...)
		if i < ours {
			cmd.Args = append(cmd.Args, "listen", "-r", "3", path)
			cmd.Env = append(os.Environ(), asBus+"=1")
		} else {
			cmd.Env = append(os.Environ(), refListenerEnv+"="+path, refLateEnv+"="+late)
		}
		rr, rw, _ := os.Pipe()
		cmd.ExtraFiles = []*os.File{rw}
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		rw.Close()
		cmds = append(cmds, cmd)
		if ready, _ := io.ReadAll(rr); string(ready) != "\n" {
			b.Fatalf("listener %d not ready", i)
		}
		rr.Close()
		go func() {
			r := bufio.NewReader(out)
			for j := range b.N {
				line, err := r.ReadString('\n')
				if err != nil || line != strconv.Itoa(j)+"\n" {
					counts <- fmt.Errorf("message %d: %q, %v", j, line, err)
					return
				}
			}
			counts <- nil
		}()
	}
	bb, err := Open(path, false)
	if err != nil {
		b.Fatal(err)
	}
	defer bb.Close()
	b.ResetTimer()
	for i := range b.N {
		if _, err := bb.Broadcast([]byte(strconv.Itoa(i)), time.Now().Add(patience), false); err != nil {
			b.Fatalf("message %d: %v", i, err)
		}
	}
	b.StopTimer()
	for range ours + ref {
		select {
		case err := <-counts:
			if err != nil {
				b.Fatal(err)
			}
		case <-time.After(patience):
			b.Fatal("a listener did not get every message")
		}
	}
}

// badInput is one case of TestBadInputCorpus. setup makes what the case
// needs in dir and returns the words to put for {NAME} in args and want.
type badInput struct {
	name   string
	setup  func(t *testing.T, dir string) map[string]string
	args   []string
	stdin  string
	env    []string // more environment
	nobody bool     // run as uid 65534
	code   int
	want   string // stderr's first line after "bus: ", exactly; "" for none
}

// rawObjects makes a semaphore array of nsems (X = 1) and, if size > 0, a
// segment of size bytes, with those modes, as uid 0; the test removes them.
func rawObjects(t *testing.T, nsems, size, semPerm, shmPerm int) (sem, shm int32) {
	t.Helper()
	sem, shm = 0x3b000000+int32(rand.IntN(1<<24)), 0x3c000000+int32(rand.IntN(1<<24))
	if nsems > 0 {
		id, e := semget(sem, nsems, ipcCreat|ipcExcl|semPerm)
		if e != 0 {
			t.Fatalf("semget: %v", e)
		}
		t.Cleanup(func() { semctl(id, 0, ipcRmid, 0) })
		if nsems > semX {
			semctl(id, semX, semSetval, 1)
		}
	}
	if size > 0 {
		id, e := shmget(shm, size, ipcCreat|ipcExcl|shmPerm)
		if e != 0 {
			t.Fatalf("shmget: %v", e)
		}
		t.Cleanup(func() { shmctl(id, ipcRmid, nil) })
	}
	return sem, shm
}

// treeState lists everything under dir: name, type, mode, size, target.
func treeState(dir string) []string {
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			out = append(out, p+" error "+err.Error())
			return nil
		}
		line := fmt.Sprintf("%s %v %d", p, info.Mode(), info.Size())
		if info.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		if info.Mode().IsRegular() && info.Size() < 4096 {
			data, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q", data)
		}
		out = append(out, line)
		return nil
	})
	sort.Strings(out)
	return out
}

// TestBadInputCorpus: bad bus files, objects, messages, modes, owners,
// durations, regexps, fds, operands and flags, end to end. Each exits with
// the right status and one exact line (two for usage), never panics, and
// leaves no file and no IPC object behind, nor takes one away.
func TestBadInputCorpus(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: some cases run as another user, on objects root made")
	}
	file := func(name, data string, mode os.FileMode) func(*testing.T, string) map[string]string {
		return func(t *testing.T, dir string) map[string]string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(data), mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, mode)
			return map[string]string{"P": p}
		}
	}
	keys := func(nsems, size, semPerm, shmPerm int, fileMode os.FileMode) func(*testing.T, string) map[string]string {
		return func(t *testing.T, dir string) map[string]string {
			sem, shm := rawObjects(t, nsems, size, semPerm, shmPerm)
			p := filepath.Join(dir, "objects")
			os.WriteFile(p, formatKeys(sem, shm), fileMode)
			os.Chmod(p, fileMode)
			return map[string]string{"P": p, "SEM": strconv.Itoa(int(sem)), "SHM": strconv.Itoa(int(shm))}
		}
	}
	path := func(name string) func(*testing.T, string) map[string]string {
		return func(t *testing.T, dir string) map[string]string {
			return map[string]string{"P": filepath.Join(dir, name)}
		}
	}
	busAt := func(t *testing.T, dir string) map[string]string {
		p := filepath.Join(dir, "good")
		if _, err := Create(p, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeQuietly(p) })
		return map[string]string{"P": p}
	}
	fifo := func(t *testing.T, dir string) map[string]string {
		p := filepath.Join(dir, "fifo")
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return map[string]string{"P": p}
	}
	loop := func(t *testing.T, dir string) map[string]string {
		os.Symlink("loop2", filepath.Join(dir, "loop1"))
		os.Symlink("loop1", filepath.Join(dir, "loop2"))
		return map[string]string{"P": filepath.Join(dir, "loop1")}
	}
	missingFolder := func(t *testing.T, dir string) map[string]string {
		return map[string]string{"P": filepath.Join(dir, "nodir", "bus"), "D": filepath.Join(dir, "nodir")}
	}
	danglingLink := func(t *testing.T, dir string) map[string]string {
		os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling"))
		return map[string]string{"P": filepath.Join(dir, "dangling"), "T": filepath.Join(dir, "gone")}
	}
	long := strings.Repeat("x", 2048)
	const usageWait = "usage: bus wait [-t DURATION] [-m REGEXP] [-r FD] [-0] PATH [COMMAND]"
	cases := []badInput{
		// Bus files, with the subcommands TestBadBusFiles does not try.
		{name: "wait on an empty file", setup: file("empty", "", 0o600), args: []string{"wait", "{P}"}, code: 1, want: "{P}: not a bus file (empty)"},
		{name: "info on one line", setup: file("one", "12\n", 0o600), args: []string{"info", "{P}"}, code: 1, want: "{P}: not a bus file (only one line)"},
		{name: "chmod on words", setup: file("words", "twelve\n13\n", 0o600), args: []string{"chmod", "600", "{P}"}, code: 1, want: "{P}: not a bus file (line 1 is not a decimal key)"},
		{name: "chown on a negative key", setup: file("neg", "12\n-13\n", 0o600), args: []string{"chown", "root", "{P}"}, code: 1, want: "{P}: not a bus file (line 2 is out of range (keys are 1 to 1073741823))"},
		{name: "create on a key too large", setup: file("big", "1073741824\n13\n", 0o600), args: []string{"create", "{P}"}, code: 1, want: "{P}: not a bus file (line 1 is out of range (keys are 1 to 1073741823))"},
		{name: "create on binary junk", setup: file("junk", "\x00\xff\x01\n\x7f\n", 0o600), args: []string{"create", "{P}"}, code: 1, want: "{P}: not a bus file (line 1 is not a decimal key)"},
		{name: "create -x on junk", setup: file("junkx", "\xff\xfe\n", 0o600), args: []string{"create", "-x", "{P}"}, code: 1, want: "{P}: already exists"},
		{name: "wait on CRLF lines", setup: file("crlf", "12\r\n13\r\n", 0o600), args: []string{"wait", "{P}"}, code: 1, want: "{P}: not a bus file (line 1 is not a decimal key)"},
		{name: "info on a long file", setup: file("long", strings.Repeat("1\n", 50), 0o600), args: []string{"info", "{P}"}, code: 1, want: "{P}: not a bus file (too long)"},
		{name: "create on a directory", setup: func(t *testing.T, dir string) map[string]string {
			os.Mkdir(filepath.Join(dir, "adir"), 0o755)
			return map[string]string{"P": filepath.Join(dir, "adir")}
		}, args: []string{"create", "{P}"}, code: 1, want: "{P}: is a directory, not a bus file"},
		{name: "create on a FIFO", setup: fifo, args: []string{"create", "{P}"}, code: 1, want: "{P}: not a bus file (not a regular file)"},
		{name: "wait on a FIFO", setup: fifo, args: []string{"wait", "{P}"}, code: 1, want: "{P}: not a bus file (not a regular file)"},
		{name: "listen on a device", setup: func(*testing.T, string) map[string]string { return map[string]string{"P": "/dev/null"} }, args: []string{"listen", "{P}"}, code: 1, want: "{P}: not a bus file (not a regular file)"},
		{name: "wait on a symlink loop", setup: loop, args: []string{"wait", "{P}"}, code: 1, want: "{P}: too many levels of symbolic links"},
		{name: "create on a symlink loop", setup: loop, args: []string{"create", "{P}"}, code: 1, want: "{P}: too many levels of symbolic links"},
		{name: "a file taken for a folder", setup: func(t *testing.T, dir string) map[string]string {
			os.WriteFile(filepath.Join(dir, "plain"), []byte("1\n2\n"), 0o600)
			return map[string]string{"P": filepath.Join(dir, "plain", "bus")}
		}, args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: no such bus file (a parent is not a directory)"},
		{name: "create under a file", setup: func(t *testing.T, dir string) map[string]string {
			os.WriteFile(filepath.Join(dir, "plain2"), []byte("x"), 0o600)
			return map[string]string{"P": filepath.Join(dir, "plain2", "bus")}
		}, args: []string{"create", "{P}"}, code: 1, want: "{P}: no such bus file (a parent is not a directory)"},
		{name: "create with the bus folder a file", setup: func(t *testing.T, dir string) map[string]string {
			p := filepath.Join(dir, "xdg")
			os.WriteFile(p, nil, 0o600)
			return map[string]string{"P": p}
		}, env: []string{"XDG_RUNTIME_DIR={P}"}, args: []string{"create"}, code: 1, want: "{P}/bus: making the bus folder: not a directory"},

		// Objects: gone, half gone, the wrong size, another user's.
		{name: "wait on objects that do not exist", setup: keys(0, 0, 0, 0, 0o600), args: []string{"wait", "{P}"}, code: 1, want: "{P}: stale bus: its semaphores (key {SEM}) are gone; `bus create {P}` makes it anew, `bus remove {P}` removes it"},
		{name: "info on an array of 2000 semaphores", setup: keys(2000, 2048, 0o600, 0o600, 0o600), args: []string{"info", "{P}"}, code: 1, want: "{P}: not a bus: its semaphore array (key {SEM}) has 2000 semaphores, not 5"},
		{name: "chown on objects that do not exist", setup: keys(0, 0, 0, 0, 0o600), args: []string{"chown", "root", "{P}"}, code: 1, want: "{P}: stale bus: its semaphores and shared memory are gone; `bus create {P}` makes it anew"},
		{name: "broadcast with the segment gone", setup: keys(5, 0, 0o600, 0, 0o600), args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: stale bus: its shared memory (key {SHM}) is gone; `bus create {P}` makes it anew, `bus remove {P}` removes it"},
		{name: "semaphores of the wrong size", setup: keys(3, 2048, 0o600, 0o600, 0o600), args: []string{"listen", "{P}"}, code: 1, want: "{P}: not a bus: the semaphores of key {SEM} are not a bus's (wrong size)"},
		{name: "a segment too small", setup: keys(5, 1024, 0o600, 0o600, 0o600), args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: not a bus: the shared memory of key {SHM} are not a bus's (wrong size)"},
		{name: "another user's bus file", setup: file("private", "12\n13\n", 0o600), nobody: true, args: []string{"wait", "{P}"}, code: 1, want: "{P}: permission denied reading the bus file (it belongs to root (uid 0), mode rw-------)"},
		{name: "wait on another user's objects", setup: keys(5, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"wait", "{P}"}, code: 1, want: "{P}: permission denied: listening needs read and write permission on the bus's semaphores, owned by root (uid 0), mode rw-------"},
		{name: "another user's segment", setup: keys(5, 2048, 0o666, 0o600, 0o644), nobody: true, args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: permission denied: broadcasting needs read and write permission on the bus's shared memory, owned by root (uid 0), mode rw-------"},
		{name: "listen on a segment another user may only write", setup: keys(5, 2048, 0o666, 0o622, 0o644), nobody: true, args: []string{"listen", "{P}"}, code: 1, want: "{P}: permission denied: listening needs read permission on the bus's shared memory, owned by root (uid 0), mode rw--w--w-"},
		{name: "remove another user's objects", setup: keys(5, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"remove", "{P}"}, code: 1, want: "{P}: permission denied: only the bus's owner or root may change or remove its semaphores (owned by root (uid 0))"},
		{name: "chown another user's bus", setup: keys(5, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"chown", "65534", "{P}"}, code: 1, want: "{P}: permission denied: only root may give a bus to another user; its owner (root (uid 0)) may give it only to a group they are in"},
		{name: "create where one may not write", setup: path("nobodys"), nobody: true, args: []string{"create", "{P}"}, code: 1, want: "{P}: permission denied creating the bus file (its folder belongs to root (uid 0), mode rwxr-xr-x)"},

		// Messages.
		{name: "an empty message is legal", setup: busAt, args: []string{"broadcast", "{P}", ""}, code: 0},
		{name: "an empty line is legal", setup: busAt, stdin: "\n", args: []string{"broadcast", "{P}"}, code: 0},
		{name: "a 2048-byte record", setup: busAt, stdin: long + "\x00", args: []string{"broadcast", "-0", "{P}"}, code: 1, want: "{P}: stdin record 1: message too long (2048 bytes; at most 2047); not sent"},
		{name: "a NUL in a line", setup: busAt, stdin: "ok\na\x00b\n", args: []string{"broadcast", "{P}", "-"}, code: 1, want: "{P}: stdin line 2: message has a NUL byte at offset 1; not sent"},
		{name: "a surrogate half", setup: busAt, args: []string{"broadcast", "{P}", "\xed\xa0\x80"}, code: 1, want: "{P}: message is not valid UTF-8; nothing sent"},
		{name: "an overlong encoding", setup: busAt, stdin: "\xc0\xaf\n", args: []string{"broadcast", "{P}"}, code: 1, want: "{P}: stdin line 1: message is not valid UTF-8; not sent"},
		{name: "4096 bytes", setup: busAt, args: []string{"broadcast", "{P}", long + long}, code: 1, want: "{P}: message too long (4096 bytes; at most 2047); nothing sent"},

		// Modes and owners.
		{name: "empty permissions", setup: busAt, args: []string{"chmod", "", "{P}"}, code: 2, want: "empty permissions"},
		{name: "not octal", setup: busAt, args: []string{"chmod", "8", "{P}"}, code: 2, want: `permissions "8": use octal (660) or u, g, o with =, + and - (ug, +o, u-g)`},
		{name: "octal too long", setup: busAt, args: []string{"chmod", "07777", "{P}"}, code: 2, want: `permissions "07777": octal mode too long`},
		{name: "= alone", setup: busAt, args: []string{"chmod", "=", "{P}"}, code: 2, want: `permissions "=": = must be followed by u, g, o or a`},
		{name: "an operator at the end", setup: busAt, args: []string{"chmod", "u+", "{P}"}, code: 2, want: `permissions "u+": + must be followed by u, g, o or a`},
		{name: "no group after the colon", setup: busAt, args: []string{"chown", "root:", "{P}"}, code: 2, want: `group "root:": no group name`},
		{name: "chgrp to nothing", setup: busAt, args: []string{"chgrp", "", "{P}"}, code: 2, want: `group "": no group name`},
		{name: "uid -1 spelt out", setup: busAt, args: []string{"chown", "4294967295", "{P}"}, code: 1, want: `{P}: no such user "4294967295" (not in /etc/passwd)`},
		{name: "uid beyond 32 bits", setup: busAt, args: []string{"chown", "4294967296", "{P}"}, code: 1, want: `{P}: no such user "4294967296" (not in /etc/passwd)`},
		{name: "an unknown group after a user", setup: busAt, args: []string{"chown", "0:no-such-group-x", "{P}"}, code: 1, want: `{P}: no such group "no-such-group-x" (not in /etc/group)`},

		// Durations, regexps, fds.
		{name: "a zero duration", setup: busAt, args: []string{"wait", "-t", "0", "{P}"}, code: 2, want: `-t "0": the duration must be more than 0`},
		{name: "a duration without unit", setup: busAt, args: []string{"broadcast", "-t", "1", "{P}", "x"}, code: 2, want: `-t "1": not a duration (try 500ms, 2s, 1m)`},
		{name: "a duration that overflows", setup: busAt, args: []string{"listen", "-t", "9999999999h", "{P}"}, code: 2, want: `-t "9999999999h": not a duration (try 500ms, 2s, 1m)`},
		{name: "a duration with a colon", setup: busAt, args: []string{"wait", "-t", "a: b", "{P}"}, code: 2, want: `-t "a: b": not a duration (try 500ms, 2s, 1m)`},
		{name: "-t last", setup: busAt, args: []string{"wait", "-t"}, code: 2, want: "flag needs an argument: -t"},
		{name: "a reversed range", setup: busAt, args: []string{"wait", "-m", "[z-a]", "{P}"}, code: 2, want: "-m \"[z-a]\": invalid character class range: `z-a`"},
		{name: "a repeat too large", setup: busAt, args: []string{"listen", "-m", "a{1001}", "{P}"}, code: 2, want: "-m \"a{1001}\": invalid repeat count: `{1001}`"},
		{name: "a bare star", setup: busAt, args: []string{"wait", "-m", "*", "{P}"}, code: 2, want: "-m \"*\": missing argument to repetition operator: `*`"},
		{name: "an unknown class", setup: busAt, args: []string{"wait", "-m", `\p{Foo}`, "{P}"}, code: 2, want: "-m \"\\\\p{Foo}\": invalid character class range: `\\p{Foo}`"},
		{name: "a regexp with a colon", setup: busAt, args: []string{"wait", "-m", "a: (b", "{P}"}, code: 2, want: "-m \"a: (b\": missing closing ): `a: (b`"},
		{name: "a negative fd", setup: busAt, args: []string{"wait", "-r", "-1", "{P}"}, code: 2, want: `-r "-1": not a file descriptor number`},
		{name: "an empty fd", setup: busAt, args: []string{"listen", "-r", "", "{P}"}, code: 2, want: `-r "": not a file descriptor number`},
		{name: "a ten-digit fd", setup: busAt, args: []string{"wait", "-r", "1234567890", "{P}"}, code: 2, want: `-r "1234567890": not a file descriptor number`},
		{name: "a read-only fd", setup: busAt, args: []string{"wait", "-r", "0", "{P}"}, code: 2, want: `-r "0": open for reading only (the ready signal is written to it)`},

		// Paths that name no bus, and what create says of them.
		{name: "create in a missing folder", setup: missingFolder, args: []string{"create", "{P}"}, code: 1, want: "{P}: its folder {D} does not exist"},
		{name: "create where the folder refuses files", args: []string{"create", "/proc/bus-test"}, code: 1, want: "/proc/bus-test: creating the bus file: no such file or directory"},
		{name: "create through a dangling link", setup: danglingLink, args: []string{"create", "{P}"}, code: 1, want: "{P}: a symbolic link to {T}, which does not exist"},
		{name: "broadcast through a dangling link", setup: danglingLink, args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: a symbolic link to {T}, which does not exist"},
		{name: "create with an empty path", args: []string{"create", ""}, code: 1, want: "empty path: give the bus's path, or none for a random one"},

		// Operands and flags.
		{name: "create with two paths", args: []string{"create", "a", "b"}, code: 2, want: `extra operand "b"`},
		{name: "chmod without a path", args: []string{"chmod", "600"}, code: 2, want: "missing operand"},
		{name: "chown without a path", args: []string{"chown", "root"}, code: 2, want: "missing operand"},
		{name: "info without a path", args: []string{"info"}, code: 2, want: "missing operand"},
		{name: "remove without a path", args: []string{"remove"}, code: 2, want: "missing operand"},
		{name: "wait without a path", args: []string{"wait"}, code: 2, want: "missing operand"},
		{name: "an unknown flag of listen", setup: busAt, args: []string{"listen", "-x", "{P}"}, code: 2, want: "flag not known: -x"},
		{name: "-t where there is none", setup: busAt, args: []string{"info", "-t", "1s", "{P}"}, code: 2, want: "flag not known: -t"},
		{name: "-n on remove", setup: busAt, args: []string{"remove", "-n", "{P}"}, code: 2, want: "flag not known: -n"},
		{name: "a long unknown flag", setup: busAt, args: []string{"broadcast", "--bogus", "{P}", "x"}, code: 2, want: "flag not known: -bogus"},
		{name: "a flag alone", args: []string{"--bogus"}, code: 2, want: "no subcommand"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := xdgDir(t)
			words := map[string]string{}
			if c.setup != nil {
				words = c.setup(t, dir)
			}
			fill := func(s string) string {
				for k, v := range words {
					s = strings.ReplaceAll(s, "{"+k+"}", v)
				}
				return s
			}
			args := make([]string, len(c.args))
			for i, a := range c.args {
				args[i] = fill(a)
			}
			objs, _ := sysvObjects()
			tree := treeState(dir)
			cmd := busCommand(args...)
			cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+dir)
			for _, e := range c.env {
				cmd.Env = append(cmd.Env, fill(e))
			}
			if c.nobody {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			}
			r := runCmd(t, cmd, c.stdin)
			if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
				t.Fatalf("bus %q panicked: %s", args, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			want := fill(c.want)
			switch {
			case r.code != c.code:
				t.Errorf("bus %q: exit status %d, want %d; stderr %q", args, r.code, c.code, r.stderr)
			case want == "" && r.stderr != "":
				t.Errorf("bus %q: stderr %q, want none", args, r.stderr)
			case want != "" && lines[0] != "bus: "+want:
				t.Errorf("bus %q: stderr\n%q, want\n%q", args, lines[0], "bus: "+want)
			case c.code == 2 && (len(lines) != 2 || !strings.HasPrefix(lines[1], "usage: bus ")):
				t.Errorf("bus %q: usage error is not one line and the synopsis: %q", args, r.stderr)
			case c.code == 1 && len(lines) != 1:
				t.Errorf("bus %q: stderr is not one line: %q", args, r.stderr)
			}
			if now, _ := sysvObjects(); !slices.Equal(objs, now) {
				t.Errorf("bus %q changed the IPC objects:\nbefore %v\nafter  %v", args, objs, now)
			}
			if now := treeState(dir); !slices.Equal(tree, now) {
				t.Errorf("bus %q changed the files:\nbefore %q\nafter  %q", args, tree, now)
			}
		})
	}
}

// segmentPerms returns the permissions field of the mapping of the segment
// of key shm in /proc/PID/maps ("r--s", "rw-s"), or "" if it is not mapped.
func segmentPerms(t *testing.T, pid string, shm int32) string {
	t.Helper()
	maps, err := os.ReadFile("/proc/" + pid + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("/SYSV%08x", uint32(shm))
	for _, line := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && f[5] == name {
			return f[1]
		}
	}
	return ""
}

// TestListenerAttachesReadOnly: listeners map the segment read-only (a
// listener cannot scribble on the message), writers read-write.
func TestListenerAttachesReadOnly(t *testing.T) {
	path := newBus(t)
	_, shm, _, err := readBusFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"listen", path}, {"wait", path}, {"listen", "-m", "x", path, "true"}} {
		l := startListener(t, nil, args[0], args[1:]...)
		if got := segmentPerms(t, strconv.Itoa(l.cmd.Process.Pid), shm); got != "r--s" {
			t.Errorf("bus %v maps the segment %q, want r--s", args, got)
		}
		l.kill()
	}
	ref := startRefListener(t, path)
	if got := segmentPerms(t, strconv.Itoa(ref.cmd.Process.Pid), shm); got != "r--s" {
		t.Errorf("reference listener maps the segment %q, want r--s", got)
	}
	ref.kill()
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := segmentPerms(t, "self", shm); got != "rw-s" {
		t.Errorf("a writer maps the segment %q, want rw-s", got)
	}
}

// TestCreateThroughSymlinks: `bus create PATH` never writes through a
// symbolic link at PATH. A dangling one is an error that creates nothing
// (not its target, not an object); one to a bus is that bus, left alone;
// one to a stale bus is replaced by a new bus file, the target untouched.
func TestCreateThroughSymlinks(t *testing.T) {
	dir := xdgDir(t)
	outside, err := os.MkdirTemp("", "bustest-outside")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(outside) })
	target := filepath.Join(outside, "target")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	objs, _ := sysvObjects()
	bus(t, "", "create", link).expect(t, 1, link+": a symbolic link to "+target+", which does not exist")
	bus(t, "", "create", "-x", link).expect(t, 1, link+": already exists")
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("create wrote through the dangling link: %v", err)
	}
	if now, _ := sysvObjects(); !slices.Equal(objs, now) {
		t.Fatalf("a failed create left objects: %v -> %v", objs, now)
	}
	if dest, err := os.Readlink(link); err != nil || dest != target {
		t.Fatalf("the link is now %q, %v", dest, err)
	}

	// A link to a live bus: that bus, left as it is.
	if _, err := Create(target, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeQuietly(target) })
	before, _ := os.ReadFile(target)
	bus(t, "", "create", link).expect(t, 0, "")
	if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
		t.Fatal("create through a link changed the bus")
	}
	if dest, _ := os.Readlink(link); dest != target {
		t.Fatal("create replaced the link to a live bus")
	}

	// A link to a stale bus (a well-known path linked to a bus kept
	// elsewhere): the repair makes the target a live bus again, by a new
	// file renamed over it, and the link still names it.
	sem, shm, _, _ := readBusFile(target)
	removeObjects(sem, shm)
	stale, _ := os.ReadFile(target)
	bus(t, "", "create", link).expect(t, 0, "")
	if after, _ := os.ReadFile(target); bytes.Equal(stale, after) {
		t.Fatalf("the link's target was not repaired: %q", after)
	}
	if dest, err := os.Readlink(link); err != nil || dest != target {
		t.Fatalf("the link now names %q (%v), want %q", dest, err, target)
	}
	if s, _, _, _, err := staleness(link); err != nil || s {
		t.Fatalf("the repaired bus is stale (%v) or unreadable (%v)", s, err)
	}
	if names, _ := filepath.Glob(filepath.Join(outside, ".target.tmp*")); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, ".link.tmp*")); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
}

// The suite on every Linux architecture Go builds for (but the host's), and
// buses shared by processes of different architectures.
//
// TestArches cross-compiles the test binary for each architecture and runs
// it: natively for 386 (an x86_64 kernel runs it, and checks what qemu
// hides: IPC_64, the 32-bit layouts and the 32-bit timespec), under
// qemu-user for the rest, with BUS_TEST_EXEC_PREFIX naming the same qemu so
// that the children the suite spawns run under it too. Each inner run has
// an IPC namespace of its own (as root), so that runs in parallel do not
// see each other's objects in their leftover checks, and the host's own
// objects are checked unchanged after them all.
//
// TestMixedArches builds `bus` itself for big- and little-endian, 32- and
// 64-bit, direct-call and ipc() architectures and has them create, listen
// on, broadcast on and chmod one bus with the host's binary.
//
// Both are left out by -short (the inner runs use it: no recursion).

// archTarget is one architecture to build for and how to run its binaries.
type archTarget struct {
	name   string   // the subtest's name
	goarch string   // GOARCH
	env    []string // more build environment (GOMIPS)
	runner []string // the qemu command line; nil: run natively
	how    string   // how sysv_linux.go reaches the calls, for the logs
}

// qemuReserve is the guest address space given to 64-bit guests whose
// shmat qemu must place at a 256 KiB SHMLBA (mips64el, loongarch64): without
// -R, qemu 7.2's mmap_find_vma fails a process's second attachment with
// ENOMEM (seen with a probe: the first shmat works, the next fails, even
// with nothing else mapped). A reserved space makes it search its own map.
const qemuReserve = "0x8000000000"

// archTargets lists every Linux GOARCH of sysv_linux.go's table that a
// Debian machine can run: natively, or with Debian's qemu-user-static.
// (mips64 and ppc64, big-endian, are left out: Debian's qemu runs them, but
// no distribution ships Go binaries for them; their rows share the code of
// s390x and mips64le.)
var archTargets = []archTarget{
	{name: "amd64", goarch: "amd64", runner: []string{"qemu-x86_64-static"}, how: "direct, no IPC_64"},
	// qemu-i386 7.2 crashes in Go's runtime: 386 runs natively, on an
	// x86_64 kernel (CONFIG_IA32_EMULATION), which is also the one place
	// where the 32-bit layouts, IPC_64 and the 32-bit timespec of the compat
	// ipc() are checked for real (qemu strips IPC_64).
	{name: "386", goarch: "386", how: "ipc(), IPC_64"},
	{name: "arm", goarch: "arm", runner: []string{"qemu-arm-static"}, how: "direct, IPC_64"},
	{name: "arm64", goarch: "arm64", runner: []string{"qemu-aarch64-static"}, how: "direct, no IPC_64"},
	{name: "riscv64", goarch: "riscv64", runner: []string{"qemu-riscv64-static"}, how: "direct, no IPC_64"},
	{name: "loong64", goarch: "loong64", runner: []string{"qemu-loongarch64-static", "-R", qemuReserve}, how: "direct, no IPC_64"},
	{name: "mips", goarch: "mips", env: []string{"GOMIPS=hardfloat"}, runner: []string{"qemu-mips-static"}, how: "ipc(), IPC_64"},
	{name: "mips-softfloat", goarch: "mips", env: []string{"GOMIPS=softfloat"}, runner: []string{"qemu-mips-static"}, how: "ipc(), IPC_64"},
	{name: "mipsle", goarch: "mipsle", runner: []string{"qemu-mipsel-static"}, how: "ipc(), IPC_64"},
	{name: "mips64le", goarch: "mips64le", runner: []string{"qemu-mips64el-static", "-R", qemuReserve}, how: "direct, IPC_64"},
	{name: "ppc64le", goarch: "ppc64le", runner: []string{"qemu-ppc64le-static"}, how: "ipc(), IPC_64"},
	{name: "s390x", goarch: "s390x", runner: []string{"qemu-s390x-static"}, how: "ipc() of 5 arguments, IPC_64, SETVAL << 32"},
}

const (
	archParallel   = 2                // inner runs at once: the machine has 2 cores
	archBuildLimit = 15 * time.Minute // one cross-compilation, std included when the cache is cold
	archRunLimit   = 10 * time.Minute // one inner run of the suite
	// archNeeds is what TestArches asks of the test binary's -timeout.
	archNeeds = 25 * time.Minute
)

// innerSkip is the inner runs' -test.skip.
const innerSkip = "^(TestArches|TestMixedArches|TestSpinModels)$"

// nativeTests must pass, not skip, in a native run of another architecture
// (386): they use IPC_STAT and IPC_SET (chmod, chown, info) and timeouts,
// whose layouts qemu would hide.
var nativeTests = []string{"TestChmodChown", "TestInfo", "TestTimeouts"}

// targetFor returns the target of a name in archTargets.
func targetFor(t *testing.T, name string) archTarget {
	for _, a := range archTargets {
		if a.name == name {
			return a
		}
	}
	t.Fatalf("no target %q", name)
	return archTarget{}
}

// isHost reports whether a is what this test binary was built as.
func (a archTarget) isHost() bool {
	return a.goarch == runtime.GOARCH && len(a.env) == 0
}

// prefix is the command line that runs a binary for a: its qemu, or
// nothing to run it natively. 386 runs natively only on an amd64 host.
func (a archTarget) prefix() []string {
	if a.goarch == "386" && runtime.GOARCH != "amd64" {
		return []string{"qemu-i386-static"}
	}
	return a.runner
}

// command returns the argv that runs binary for a.
func (a archTarget) command(binary string) []string {
	return append(slices.Clone(a.prefix()), binary)
}

// checkRunner fails t if a's qemu is not installed: no architecture may be
// left out quietly.
func (a archTarget) checkRunner(t *testing.T) {
	t.Helper()
	if len(a.prefix()) == 0 {
		return
	}
	if _, err := exec.LookPath(a.prefix()[0]); err != nil {
		t.Fatalf("%s: %v: install qemu-user-static (Debian) to test this architecture", a.name, err)
	}
}

// goTool runs `go ARGS...` for target a, bounded by limit, and returns
// what went wrong, or "" (it may run off the test's goroutine).
func goTool(a archTarget, limit time.Duration, args ...string) string {
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, gotool, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+a.goarch, "GOFLAGS=")
	cmd.Env = append(cmd.Env, a.env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Sprintf("%s: go %s: not done after %v", a.name, strings.Join(args, " "), limit)
	}
	if err != nil {
		return fmt.Sprintf("%s: go %s: %v\n%s", a.name, strings.Join(args, " "), err, out)
	}
	return ""
}

func TestArches(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the suite and runs it under qemu for every architecture; -short leaves it out")
	}
	if d, ok := t.Deadline(); ok && time.Until(d) < archNeeds {
		t.Fatalf("TestArches needs up to %v and the test binary's -timeout leaves %v: "+
			"run go test -timeout 80m (or -short, which leaves it out)", archNeeds, time.Until(d).Round(time.Second))
	}
	root := os.Getuid() == 0
	if !root {
		t.Log("not root: no IPC namespaces; the architectures run one at a time, and the permission tests skip")
	}
	before, err := sysvObjects()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // the inner suites run children as another user
	parallel := archParallel
	if !root {
		parallel = 1
	}
	slots := make(chan struct{}, parallel)
	start := time.Now()
	t.Run("each", func(t *testing.T) {
		for _, a := range archTargets {
			if a.isHost() {
				continue // the outer run is this architecture's
			}
			t.Run(a.name, func(t *testing.T) {
				t.Parallel()
				a.checkRunner(t)
				slots <- struct{}{}
				defer func() { <-slots }()
				runArch(t, a, dir, root)
			})
		}
	})
	t.Logf("all architectures: %v", time.Since(start).Round(time.Second))
	after, err := sysvObjects()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Errorf("the inner runs changed the host's System V objects:\nbefore: %v\nafter:  %v", before, after)
	}
}

// innerResultRE matches a top-level test's result in -test.v output.
var innerResultRE = regexp.MustCompile(`(?m)^--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)$`)

// runArch builds the test binary for a and runs the suite with it.
// ownIPC: it runs as root, in an IPC namespace of its own.
func runArch(t *testing.T, a archTarget, dir string, ownIPC bool) {
	bin := filepath.Join(dir, "bus.test."+a.name)
	t0 := time.Now()
	if err := goTool(a, archBuildLimit, "test", "-c", "-o", bin, "."); err != "" {
		t.Fatal(err)
	}
	built := time.Since(t0)

	// -test.short: no recursion into TestArches, and the suite's big loops
	// scaled down. -test.skip leaves out what runs no code of the
	// architecture (it would only repeat the host's run), so that the inner
	// output has no SKIP line of its own making (a SKIP there fails the
	// architecture): the drivers here, and the spin model checks, which run
	// host tools on testdata/*.pml (half of each inner run's time).
	inner := -time.Minute + archRunLimit
	argv := append(a.command(bin), "-test.short", "-test.v", "-test.count=1",
		"-test.skip", innerSkip, "-test.timeout", inner.String())
	ctx, cancel := context.WithTimeout(context.Background(), archRunLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "BUS_TEST_EXEC_PREFIX="+strings.Join(a.prefix(), " "))
	// Its own process group, so that a timeout kills its children too; its
	// own IPC namespace, which goes with its objects when its last process
	// exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if ownIPC {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWIPC
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	// A file, not a pipe: a child left running cannot hold up Wait.
	logPath := filepath.Join(dir, "out."+a.name+".txt")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	t1 := time.Now()
	runErr := cmd.Run()
	ran := time.Since(t1)
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever it left running
	}
	data, _ := os.ReadFile(logPath)
	text := string(data)

	results := innerResultRE.FindAllStringSubmatch(text, -1)
	var passed, skipped []string
	type timed struct {
		name string
		secs float64
	}
	var slow []timed
	for _, m := range results {
		switch m[1] {
		case "PASS":
			passed = append(passed, m[2])
		case "SKIP":
			skipped = append(skipped, m[2])
		}
		secs, _ := strconv.ParseFloat(m[3], 64)
		slow = append(slow, timed{m[2], secs})
	}
	sort.Slice(slow, func(i, j int) bool { return slow[i].secs > slow[j].secs })
	var slowest []string
	for _, s := range slow[:min(3, len(slow))] {
		slowest = append(slowest, fmt.Sprintf("%s %.1fs", s.name, s.secs))
	}
	runner := "native"
	if len(a.prefix()) > 0 {
		runner = strings.Join(a.prefix(), " ")
	}
	verdict := "ok"
	if runErr != nil {
		verdict = "FAILED"
	}
	t.Logf("%s (%s; %s): build %v, run %v: %s, %d tests passed; slowest: %s",
		a.name, a.how, runner, built.Round(100*time.Millisecond), ran.Round(100*time.Millisecond),
		verdict, len(passed), strings.Join(slowest, ", "))

	if runErr != nil || len(passed) == 0 || len(skipped) > 0 {
		// Keep the whole output: the test's folder goes with the test.
		keep := filepath.Join(os.TempDir(), "bus-arches-"+a.name+".log")
		if os.WriteFile(keep, data, 0o644) == nil {
			t.Logf("%s: the inner run's whole output is in %s", a.name, keep)
		}
	}
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s: still running after %v: killed; its output:\n%s", a.name, archRunLimit, innerExcerpt(text))
	case runErr != nil:
		t.Fatalf("%s: %v; what failed:\n%s", a.name, runErr, innerExcerpt(text))
	case len(passed) == 0:
		t.Fatalf("%s: no test passed; its output:\n%s", a.name, innerExcerpt(text))
	case len(skipped) > 0 && ownIPC:
		t.Fatalf("%s: tests skipped in the inner run (every one must run on every architecture): %v", a.name, skipped)
	case len(skipped) > 0:
		t.Logf("%s: skipped, as they do for a user who is not root: %v", a.name, skipped)
	}
	if len(a.prefix()) == 0 {
		for _, name := range nativeTests {
			if !slices.Contains(passed, name) && (ownIPC || !slices.Contains(skipped, name)) {
				t.Errorf("%s: %s did not pass in the native run: it is what checks IPC_STAT, IPC_SET and timeouts where qemu would hide them", a.name, name)
			}
		}
	}
}

// innerExcerpt picks out of an inner -test.v run's output what says why it
// failed: each failed top-level test from its === RUN line, a panic (a
// -test.timeout names the tests still running), or else the last lines.
func innerExcerpt(text string) string {
	const most = 80 // lines per part
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	clip := func(part []string) string {
		if len(part) > most {
			part = append([]string{"\t..."}, part[len(part)-most:]...)
		}
		return strings.Join(part, "\n")
	}
	var parts []string
	for i, l := range lines {
		if strings.HasPrefix(l, "panic: ") {
			parts = append(parts, strings.Join(lines[i:min(len(lines), i+30)], "\n"))
			break
		}
		name, ok := strings.CutPrefix(l, "--- FAIL: ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		from := i
		for from > 0 && lines[from] != "=== RUN   "+name {
			from--
		}
		to := i + 1
		for to < len(lines) && strings.HasPrefix(lines[to], " ") {
			to++
		}
		parts = append(parts, clip(lines[from:to]))
	}
	if len(parts) == 0 {
		parts = append(parts, clip(lines))
	}
	return strings.Join(parts, "\n")
}

// peer is a bus binary of one architecture, and how to run it.
type peer struct {
	name string
	argv []string // the command line before bus's own arguments
	env  []string
}

func (p peer) command(args ...string) *exec.Cmd {
	cmd := exec.Command(p.argv[0], append(slices.Clone(p.argv[1:]), args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	return cmd
}

// hostPeer is this test binary, run as bus.
func hostPeer() peer {
	return peer{name: runtime.GOARCH + " (host)", argv: busCommand().Args, env: []string{asBus + "=1"}}
}

// buildPeers builds `bus` for each named target, in parallel.
func buildPeers(t *testing.T, names ...string) map[string]peer {
	t.Helper()
	dir := t.TempDir()
	peers := map[string]peer{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan string, len(names))
	for _, name := range names {
		a := targetFor(t, name)
		a.checkRunner(t)
		bin := filepath.Join(dir, "bus."+a.name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := goTool(a, archBuildLimit, "build", "-trimpath", "-o", bin, "."); err != "" {
				errs <- err
				return
			}
			mu.Lock()
			peers[name] = peer{name: a.name, argv: a.command(bin)}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
	return peers
}

// startPeerListener starts `bus listen -r 3 PATH` of p and returns once it
// has registered.
func startPeerListener(t *testing.T, p peer, path string) *listener {
	t.Helper()
	cmd := p.command("listen", "-r", "3", path)
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+xdgDir(t))
	return startReady(t, cmd, p.name+" listener")
}

// mixedMessages are n messages from sender, of varied lengths and UTF-8,
// the last one as long as a message can be.
func mixedMessages(sender string, n int) []string {
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("0 %s %d %s", sender, i, strings.Repeat("é", i%40))
	}
	last := fmt.Sprintf("0 %s %d ", sender, n-1)
	msgs[n-1] = last + strings.Repeat("x", maxMessage-len(last))
	return msgs
}

// startBroadcaster starts `bus broadcast PATH -` of p, sending msgs, one a
// line, from its stdin.
func startBroadcaster(t *testing.T, p peer, path string, msgs []string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := p.command("broadcast", "-t", patience.String(), path, "-")
	cmd.Stdin = strings.NewReader(strings.Join(msgs, "\n") + "\n")
	errb := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = errb, errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, errb
}

func TestMixedArches(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bus for other architectures and runs them under qemu; -short leaves it out")
	}
	// mips: big-endian 32-bit, ipc(); arm: little-endian 32-bit, direct
	// calls with IPC_64; s390x: big-endian 64-bit, five-argument ipc(),
	// SETVAL in the high half.
	peers := buildPeers(t, "mips", "arm", "s390x")
	host := hostPeer()
	mips, arm, s390x := peers["mips"], peers["arm"], peers["s390x"]
	n := 200

	cases := []struct {
		name         string
		creator      peer
		listeners    []peer
		broadcasters []peer // at once, each its own numbered stream
	}{
		{"host broadcasts to mips, arm, s390x and host", host, []peer{mips, arm, s390x, host}, []peer{host}},
		{"mips broadcasts to host, host and arm on s390x's bus", s390x, []peer{host, host, arm}, []peer{mips}},
		{"arm broadcasts to host and s390x on mips's bus", mips, []peer{host, s390x}, []peer{arm}},
		{"s390x and host broadcast at once to mips and host", arm, []peer{mips, host}, []peer{s390x, host}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			path := filepath.Join(xdgDir(t), "mixed")
			t.Cleanup(func() { removeQuietly(path) })
			r := runCmd(t, c.creator.command("create", path), "")
			r.expect(t, 0, "")
			checkWireFormat(t, path)
			var ls []*listener
			for _, p := range c.listeners {
				ls = append(ls, startPeerListener(t, p, path))
			}
			streams := map[string][]string{}
			type sender struct {
				cmd  *exec.Cmd
				errb *syncBuffer
				name string
			}
			var senders []sender
			for i, p := range c.broadcasters {
				tag := fmt.Sprintf("%s#%d", p.name, i)
				streams[tag] = mixedMessages(strings.Fields(tag)[0]+"#"+strconv.Itoa(i), n)
				cmd, errb := startBroadcaster(t, p, path, streams[tag])
				senders = append(senders, sender{cmd, errb, tag})
			}
			for _, s := range senders {
				code, err := waitBounded(s.cmd, 5*time.Minute)
				if err != nil || code != 0 {
					t.Fatalf("broadcaster %s: status %d (%v): %s", s.name, code, err, s.errb.String())
				}
			}
			// Each listener gets every stream whole and in order; streams
			// sent at once interleave.
			for i, l := range ls {
				next := map[string]int{}
				for range len(streams) * n {
					got := l.next()
					f := strings.Fields(got)
					var tag string
					for k, msgs := range streams {
						if len(f) > 1 && strings.Fields(msgs[0])[1] == f[1] {
							tag = k
						}
					}
					if tag == "" {
						t.Fatalf("listener %d (%s) got %.60q, from no broadcaster", i, c.listeners[i].name, got)
					}
					if want := streams[tag][next[tag]]; got != want {
						t.Fatalf("listener %d (%s): message %d of %s is %.60q, want %.60q", i, c.listeners[i].name, next[tag], tag, got, want)
					}
					next[tag]++
				}
			}
			checkIdle(t, path, len(ls))
			t.Logf("%d message(s) from %d broadcaster(s) to %d listeners: %v", len(streams)*n, len(senders), len(ls), time.Since(start).Round(time.Millisecond))
		})
	}

	// chmod by one architecture, read back by the others, through IPC_STAT
	// and IPC_SET of each (qemu translates the layouts: the native 386 run
	// of TestChmodChown checks them for real).
	t.Run("chmod and info across architectures", func(t *testing.T) {
		path := filepath.Join(xdgDir(t), "modes")
		t.Cleanup(func() { removeQuietly(path) })
		runCmd(t, s390x.command("create", path), "").expect(t, 0, "")
		for _, step := range []struct {
			by      peer
			perm    string
			file    uint32
			objects uint32
			info    string
		}{
			{s390x, "750", 0o640, 0o660, "mode rw-rw----"},
			{mips, "+o", 0o644, 0o666, "mode rw-rw-rw-"},
			{arm, "u", 0o600, 0o600, "mode rw-------"},
			{host, "go", 0o044, 0o066, "mode ---rw-rw-"},
		} {
			runCmd(t, step.by.command("chmod", step.perm, path), "").expect(t, 0, "")
			checkModes(t, path, step.file, step.objects)
			for _, p := range []peer{host, mips, arm, s390x} {
				r := runCmd(t, p.command("info", path), "")
				r.expect(t, 0, "")
				if !strings.Contains(r.stdout, "semaphores") || strings.Count(r.stdout, step.info) < 2 {
					t.Fatalf("after %s's chmod %s, %s's info does not show %q for both objects:\n%s", step.by.name, step.perm, p.name, step.info, r.stdout)
				}
			}
		}
	})
}
