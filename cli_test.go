package main

// The subcommands end to end as a user runs them: broadcast, listen and
// wait with their flags, streams from stdin, commands, readiness (-r),
// filters (-m), timeouts (-t, -n), usage errors and exit statuses.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

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
		{[]string{"help", "nope"}, `unknown subcommand "nope"`},
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
	bus(t, "a\nb b\n\nlast", "broadcast", path, "-").expect(t, 0, "")
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
	r := bus(t, "ok1\n"+long+"\nok2\r\n\xff\nok3", "broadcast", path, "-")
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
	// A COMMAND that starts with -, after --, is sh's command, not its
	// option: sh -c -- COMMAND (sh -c -x... was "Illegal option").
	w = startListener(t, nil, "wait", path, "--", `-x 2>/dev/null; echo "got $msg"`)
	bus(t, "", "broadcast", path, "2 go").expect(t, 0, "")
	if got := w.next(); got != "got 2 go" {
		t.Fatalf("a command starting with -: got %q", got)
	}
	if code := w.exit(); code != 0 {
		t.Fatalf("a command starting with -: wait exited %d", code)
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
	bus(t, "", "broadcast", "-t", scaledT(5*time.Second), path, "nobody").expect(t, 0, "")
	if v := semValue(t, path, semS); v != 0 {
		t.Fatalf("S = %d after wait exited", v)
	}
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
	// (300 ms, scaled: the good listener must take it within the time.)
	d := scaledT(300 * time.Millisecond)
	r = bus(t, "", "broadcast", "-t", d, path, "1 first")
	r.expect(t, 124, "timed out after "+d+": 1 listener(s) had not taken the message")
	if got := good.next(); got != "1 first" {
		t.Fatalf("got %q", got)
	}
	stopped.cmd.Process.Signal(syscall.SIGCONT)
	bus(t, "", "broadcast", "-t", scaledT(5*time.Second), path, "2 second").expect(t, 0, "")
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
	bus(t, "", "broadcast", "-t", scaledT(5*time.Second), path, "0 still works").expect(t, 0, "")
}

// TestReadyOnStdout: -r 1 is refused (closed with the ready line, stdout
// would lose the messages: bus wait -r 1 lost its first), and what the
// refusal suggests, -r 3 3>&1, gives the ready line and the message on one
// pipe.
func TestReadyOnStdout(t *testing.T) {
	path := newBus(t)
	bus(t, "", "wait", "-t", "5s", "-r", "1", path).expect(t, 2, `bus: -r "1": standard output carries the messages or the command's output (to signal on it: -r 3 3>&1)`)
	bus(t, "", "listen", "-r", "2", path).expect(t, 2, `bus: -r "2": standard error carries`)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := busCommand("wait", "-t", patience.String(), "-r", "3", path)
	cmd.Stdout, cmd.ExtraFiles = pw, []*os.File{pw}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	out := make(chan string, 2)
	go func() {
		r := bufio.NewReader(pr)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				close(out)
				return
			}
			out <- line
		}
	}()
	next := func() string {
		select {
		case line := <-out:
			return line
		case <-time.After(patience):
			cmd.Process.Kill()
			t.Fatalf("nothing on stdout after %v; stderr %q", patience, errb.String())
		}
		return ""
	}
	if got := next(); got != "\n" {
		t.Fatalf("got %q, want the ready line; stderr %q", got, errb.String())
	}
	bus(t, "", "broadcast", path, "0 first").expect(t, 0, "")
	if got := next(); got != "0 first\n" {
		t.Fatalf("got %q after the ready line, want the message; stderr %q", got, errb.String())
	}
	if code, err := waitBounded(cmd, patience); code != 0 || err != nil {
		t.Fatalf("wait: status %d, %v; stderr %q", code, err, errb.String())
	}
}

// TestStdoutWriteError: a message that cannot be written to stdout (here
// open for reading only) is an error that names the bus and says
// "standard output", not /dev/stdout; the bus goes on without it.
func TestStdoutWriteError(t *testing.T) {
	path := newBus(t)
	for _, sub := range []string{"wait", "listen"} {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := busCommand(sub, "-r", "3", path)
		cmd.Stdout, cmd.ExtraFiles = devnull, []*os.File{pw}
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		devnull.Close()
		switch b, ok := readReady(pr); {
		case !ok:
			cmd.Process.Kill()
			t.Fatalf("%s not ready after %v", sub, patience)
		case string(b) != "\n":
			cmd.Process.Kill()
			t.Fatalf("%s wrote %q for ready; stderr %q", sub, b, errb.String())
		}
		bus(t, "", "broadcast", "-t", patience.String(), path, "0 not printed").expect(t, 0, "")
		code, err := waitBounded(cmd, patience)
		if want := "bus: " + path + ": writing to standard output: bad file descriptor\n"; code != 1 || err != nil || errb.String() != want {
			t.Fatalf("%s: status %d (%v), stderr %q; want 1, %q", sub, code, err, errb.String(), want)
		}
		bus(t, "", "broadcast", "-t", "5s", path, "0 still works").expect(t, 0, "")
	}
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
	// 64 KiB, as a pipe is by default with 4 KiB pages: 16 times less than
	// a 64 KiB-page kernel's default (ppc64el), which 36 messages never
	// fill (TestKernels: exit status 0, want 124).
	const fSetpipeSz = 1031
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, pw.Fd(), fSetpipeSz, 64<<10); e != 0 {
		t.Fatalf("F_SETPIPE_SZ: %v", e)
	}
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
	// Two messages to a pipe page, 16 pages: the pipe is full after 32,
	// and the listener blocks writing the 33rd; each one after it is a
	// timeout (-t, scaled: 5 s under qemu).
	const n = 36
	body := strings.Repeat("x", 2000)
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "%d %s\n", i, body)
	}
	r := bus(t, in.String(), "broadcast", "-t", scaledT(300*time.Millisecond), path, "-")
	r.expect(t, 124, "1 listener(s) had not taken the message")
	for i := range n {
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
	bus(t, in.String(), "broadcast", path, "-").expect(t, 0, "")
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
	bus(t, "", "broadcast", "-t", scaledT(300*time.Millisecond), path, "0 second").expect(t, 124, "1 listener(s) had not taken the message")
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

// TestReadyIsNeverEarly: a broadcast sent as soon as the ready line arrives
// reaches the listener, every time.
func TestReadyIsNeverEarly(t *testing.T) {
	path := newBus(t)
	for i := range 20 {
		w := startListener(t, nil, "wait", path)
		bus(t, "", "broadcast", "-t", scaledT(10*time.Second), path, fmt.Sprintf("%d now", i)).expect(t, 0, "")
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

// TestStreamGoesOnAfterTimeout: a stdin stream reports a message that timed
// out and goes on; the status is 124 at the end.
func TestStreamGoesOnAfterTimeout(t *testing.T) {
	path := newBus(t)
	good := startListener(t, nil, "listen", path)
	stopped := startListener(t, nil, "listen", path)
	stopped.cmd.Process.Signal(syscall.SIGSTOP)
	defer stopped.cmd.Process.Signal(syscall.SIGCONT)
	d := scaledT(200 * time.Millisecond) // the good listener takes it within
	r := bus(t, "1 a\n2 b\n", "broadcast", "-t", d, path, "-")
	r.expect(t, 124, "bus: stdin line 1: "+path+": timed out after "+d+": 1 listener(s) had not taken the message\n")
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
	// asyncpreemptoff=1: no preemption signal ends a raw wait, so even a
	// wait after a quick one must keep its timer.
	for _, godebug := range []string{"", "asyncpreemptoff=1"} {
		t.Run("GODEBUG="+godebug, func(t *testing.T) { idleListenerSleeps(t, godebug) })
	}
}

func idleListenerSleeps(t *testing.T, godebug string) {
	path := newBus(t)
	cmd := busCommand("listen", "-r", "3", path)
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+xdgDir(t), "GODEBUG="+godebug)
	l := startReady(t, cmd, "listen")
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
	sleeps := func(when string) {
		t.Helper()
		deadline := time.Now().Add(patience)
		for last := switches(); ; {
			time.Sleep(100 * time.Millisecond)
			n := switches()
			if n == last {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s, an idle listener never stopped being woken: %d switches in the last 100 ms", when, n-last)
			}
			last = n
		}
		before := switches()
		time.Sleep(time.Second)
		if n := switches() - before; n > 5 {
			t.Errorf("%s, an idle listener was switched to %d times in 1 s", when, n)
		}
	}
	sleeps("after start")
	// Back to back, the waits end quickly, and the wait after the last
	// message may go without a timer.
	bus(t, "0 a\n0 b\n0 c\n", "broadcast", path, "-").expect(t, 0, "")
	for _, want := range []string{"0 a", "0 b", "0 c"} {
		if got := l.next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	sleeps("after three messages")
	bus(t, "", "broadcast", path, "0 still listening").expect(t, 0, "")
	if got := l.next(); got != "0 still listening" {
		t.Fatalf("got %q", got)
	}
}
