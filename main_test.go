package main

// End-to-end tests: the test binary re-executes itself as `bus` (as Go's own
// command tests do), with real semaphores. BUS_TEST_EXEC_PREFIX, if set, is
// prepended to every spawned command (a qemu runner, for other arches).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
		if err := cmd.Wait(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				l.code = ee.ExitCode()
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					l.code = -int(ws.Signal())
				}
			} else {
				l.code = -1000
			}
		}
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
			t.Fatalf("%s did not get ready: wrote %q to its ready fd; stderr: %s", sub, b, l.errb.String())
		}
	case <-time.After(patience):
		l.kill()
		t.Fatalf("%s not ready after %v; stderr: %s", sub, patience, l.errb.String())
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
	sem, ok := procObject(true, int32(keys[0]))
	if !ok {
		t.Fatalf("no semaphore array of key %d", keys[0])
	}
	if sem.perms&0o777 != 0o600 {
		t.Errorf("semaphore mode %o, want 600", sem.perms)
	}
	semData, _ := os.ReadFile("/proc/sysvipc/sem")
	for _, l := range strings.Split(string(semData), "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[0] == lines[0] && f[3] != "5" {
			t.Errorf("nsems %s, want 5", f[3])
		}
	}
	for i, want := range []int{0, 0, 1, 0, 0} {
		if v, e := semctl(int(sem.id), i, semGetval, 0); e != 0 || v != want {
			t.Errorf("semaphore %d = %d (%v), want %d", i, v, e, want)
		}
	}
	shm, ok := procObject(false, int32(keys[1]))
	if !ok {
		t.Fatalf("no segment of key %d", keys[1])
	}
	if shm.perms&0o777 != 0o600 {
		t.Errorf("segment mode %o, want 600", shm.perms)
	}
	shmData, _ := os.ReadFile("/proc/sysvipc/shm")
	for _, l := range strings.Split(string(shmData), "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[0] == lines[1] && f[3] != "2048" {
			t.Errorf("segment size %s, want 2048", f[3])
		}
	}
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
	bus(t, "", "create", filepath.Join(xdgDir(t), "no/such/dir/b")).expect(t, 1, "no such bus file")
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
	// A bad line stops the stream: what came before stays sent.
	long := strings.Repeat("x", 2048)
	bus(t, "ok1\n"+long+"\nnever\n", "broadcast", path).expect(t, 1, "stdin line 2: message too long")
	bus(t, "ok2\n\xff\n", "broadcast", path).expect(t, 1, "stdin line 2: message is not valid UTF-8")
	bus(t, "", "broadcast", path, "end").expect(t, 0, "")
	for _, want := range []string{"ok1", "ok2", "end"} {
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
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, err := wb.Broadcast(msg, time.Time{}, false); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var buf [shmSize + 1]byte
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
// (`bus listen` writing to files; `refproto listen`), each round both ways.
// Reports the medians in us per message and their ratio. Run with
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
			var goUs, cUs, ratios []float64
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
				// Go: the real binary, listeners printing to files.
				var gl []*exec.Cmd
				var files []string
				for i := range listeners {
					f := filepath.Join(dir, fmt.Sprintf("out%d", i))
					out, _ := os.Create(f)
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
					data, _ := os.ReadFile(files[i])
					if bytes.Count(data, []byte{'\n'}) != n {
						b.Fatalf("bus listener got %d messages of %d", bytes.Count(data, []byte{'\n'}), n)
					}
				}
				goUs = append(goUs, float64(g.Microseconds())/n)
				cUs = append(cUs, float64(c.Microseconds())/n)
				ratios = append(ratios, float64(g)/float64(c))
			}
			b.ReportMetric(median(goUs), "go-us/msg")
			b.ReportMetric(median(cUs), "c-us/msg")
			b.ReportMetric(median(ratios), "go/c")
			b.ReportMetric(slices.Max(ratios), "worst-go/c")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkOneShot: `bus broadcast PATH MSG` as a whole process (start,
// open, broadcast to one listener, exit) against `refproto send PATH MSG`,
// alternating. Reports the medians in us per process and their ratio.
func BenchmarkOneShot(b *testing.B) {
	ref, bin := buildRefproto(b), buildBus(b)
	path := benchBus(b)
	l := exec.Command(bin, "listen", path)
	if err := l.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Process.Kill(); l.Wait() })
	waitListeners(b, path, 1)
	var goUs, cUs []float64
	for range b.N {
		cUs = append(cUs, float64(timeRun(b, exec.Command(ref, "send", path, "0 one shot")).Nanoseconds())/1e3)
		goUs = append(goUs, float64(timeRun(b, exec.Command(bin, "broadcast", path, "0 one shot")).Nanoseconds())/1e3)
	}
	b.ReportMetric(median(goUs), "go-us/run")
	b.ReportMetric(median(cUs), "c-us/run")
	b.ReportMetric(median(goUs)/median(cUs), "go/c")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFootprint reports the binary's size (-trimpath -ldflags='-s -w')
// and the resident memory of a listener after b.N messages, printing to a
// file and, in another, running a command for each.
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
	b.ResetTimer()
	for i := range b.N {
		if _, err := bb.Broadcast([]byte("0 footprint "+strconv.Itoa(i)), time.Now().Add(patience), false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	rss := func(pid int) float64 {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				v, _ := strconv.ParseFloat(f[1], 64)
				return v
			}
		}
		b.Fatalf("no VmRSS for %d", pid)
		return 0
	}
	b.ReportMetric(float64(st.Size())/1e6, "binary-MB")
	b.ReportMetric(rss(ls[0].Process.Pid), "listen-RSS-KiB")
	b.ReportMetric(rss(ls[1].Process.Pid), "listen-cmd-RSS-KiB")
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
