package main

// The README's MQTT bridge ("Across machines"), end to end: a mosquitto of
// the test's own on 127.0.0.1, two buses standing for two machines, the
// README's bus-mqtt script run as written for each, messages sent on both
// sides at once (each arrives once, in order, on the other side, none lost
// after "ready", none echoed back); BenchmarkBridge measures the latency
// the bridge adds and its throughput one way.

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
)

const mosquittoHint = "install Debian's mosquitto and mosquitto-clients: apt-get install -y mosquitto mosquitto-clients"

// startBroker starts a mosquitto of the test's own on a free port of
// 127.0.0.1, with its own config (no persistence), and returns the port
// once the broker says it is running. It is killed when the test ends.
func startBroker(tb testing.TB, extra string) string {
	tb.Helper()
	for _, c := range []string{"mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(c); err != nil {
			tb.Fatalf("%s not found: %s", c, mosquittoHint)
		}
	}
	broker, err := exec.LookPath("mosquitto")
	if err != nil {
		broker = "/usr/sbin/mosquitto" // not on every user's PATH
		if _, err := os.Stat(broker); err != nil {
			tb.Fatalf("mosquitto not found: %s", mosquittoHint)
		}
	}
	dir := tb.TempDir()
	var log string
	// The port is free when picked; another process may take it before the
	// broker binds it, so a broker that fails is tried again, twice.
	for try := 0; try < 3; try++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("no free TCP port on 127.0.0.1: %v", err)
		}
		conf := filepath.Join(dir, "mosquitto.conf")
		text := "listener " + port + " 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n" + extra
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(broker, "-c", conf)
		p := startLines(tb, cmd, "mosquitto", true)
		// It logs on stderr; "running" once its listener is open.
		ok, got := p.errLine(" running", patience)
		if ok {
			return port
		}
		log = got
		p.kill()
	}
	tb.Fatalf("mosquitto did not start; its log: %s", log)
	return ""
}

// freePort is a TCP port of 127.0.0.1 that was free a moment ago. Through
// syscall, not net: net's initialisation would run in every bus the suite
// starts (the test binary is also bus), 11 ms of each start under qemu.
func freePort() (string, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return "", err
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(sa.(*syscall.SockaddrInet4).Port), nil
}

// piped is a process (and its process group) whose output the test reads
// line by line, each line stamped with when it was read.
type piped struct {
	tb    testing.TB
	what  string
	cmd   *exec.Cmd
	lines chan stamped
	errs  chan string // stderr lines, when asked for
	errb  *syncBuffer
	done  chan struct{}
	code  int
}

type stamped struct {
	s  string
	at time.Time
}

// startLines starts cmd in a process group of its own, killed whole when
// the test ends. With errLines, stderr is read line by line (errLine).
func startLines(tb testing.TB, cmd *exec.Cmd, what string, errLines bool) *piped {
	tb.Helper()
	p := &piped{tb: tb, what: what, cmd: cmd, lines: make(chan stamped, 100000), errs: make(chan string, 1000), errb: &syncBuffer{}, done: make(chan struct{})}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var errPipe io.Reader
	if errLines {
		if errPipe, err = cmd.StderrPipe(); err != nil {
			tb.Fatal(err)
		}
	} else {
		cmd.Stderr = p.errb
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", what, err)
	}
	tb.Cleanup(p.kill)
	errDone := make(chan struct{})
	go func() {
		defer close(errDone)
		if errPipe == nil {
			return
		}
		s := bufio.NewScanner(errPipe)
		for s.Scan() {
			p.errb.Write([]byte(s.Text() + "\n"))
			select {
			case p.errs <- s.Text():
			default: // nobody is waiting for it: the buffer keeps it
			}
		}
	}()
	go func() {
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				p.lines <- stamped{strings.TrimSuffix(line, "\n"), time.Now()}
			}
			if err != nil {
				break
			}
		}
		<-errDone // the pipes are read to the end before Wait closes them
		p.code = exitCode(cmd.Wait())
		close(p.lines)
		close(p.done)
	}()
	return p
}

// errLine waits for a line of stderr containing s; else it returns false
// and what stderr said.
func (p *piped) errLine(s string, d time.Duration) (bool, string) {
	timeout := time.After(d)
	for {
		select {
		case l := <-p.errs:
			if strings.Contains(l, s) {
				return true, ""
			}
		case <-p.done:
			return false, p.errb.String() + sprintf("(exited, status %d)", p.code)
		case <-timeout:
			return false, p.errb.String() + sprintf("(nothing saying %q after %v)", s, d)
		}
	}
}

func (p *piped) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	timeout := time.After(patience)
	for {
		select {
		case <-p.done:
			return
		case <-p.lines: // a full channel would hold up its reader
		case <-timeout:
			p.tb.Errorf("%s (process group %d) did not die", p.what, p.cmd.Process.Pid)
			return
		}
	}
}

// next returns the next line, failing the test after d.
func (p *piped) next(d time.Duration) stamped {
	p.tb.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			p.tb.Fatalf("%s exited (status %d); stderr: %s", p.what, p.code, p.errb.String())
		}
		return l
	case <-time.After(d):
		p.tb.Fatalf("%s: no line after %v; stderr: %s", p.what, d, p.errb.String())
	}
	return stamped{}
}

// until returns the lines up to and including marker, and when marker
// was read, failing the test if it is not there within d.
func (p *piped) until(marker string, d time.Duration) ([]string, time.Time) {
	p.tb.Helper()
	timeout := time.After(d)
	var got []string
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				p.tb.Fatalf("%s exited (status %d) before %q, after %d lines; stderr: %s", p.what, p.code, marker, len(got), p.errb.String())
			}
			got = append(got, l.s)
			if l.s == marker {
				return got, l.at
			}
		case <-timeout:
			p.tb.Fatalf("%s: no %q after %v, but %d lines, the last %q", p.what, marker, d, len(got), got[max(0, len(got)-3):])
		}
	}
}

// rig is two buses (two machines) bridged through a broker, each with a
// listener of the test's that prints all it gets.
type rig struct {
	path     [2]string
	listener [2]*piped
	bridge   [2]*piped
	pid      [2]string // each bridge's pid: the sender of what it broadcasts
}

// bridgeScript is the README's bus-mqtt script, as it is written there.
func bridgeScript(tb testing.TB) string {
	tb.Helper()
	data, err := os.ReadFile("README")
	if err != nil {
		tb.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\nAcross machines")
	if ok {
		_, sec, ok = strings.Cut(sec, "\n    #!/bin/sh\n")
	}
	if !ok {
		tb.Fatal(`README: no "Across machines" section with a #!/bin/sh block`)
	}
	script := "#!/bin/sh\n"
	for _, l := range strings.SplitAfter(sec, "\n") {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "    ") {
			break
		}
		script += strings.TrimPrefix(l, "    ")
	}
	return script
}

// newRig starts a broker, two buses, a listener on each and the README's
// bridge for each, and returns once both bridges say they are ready.
func newRig(tb testing.TB, brokerConf string) *rig {
	tb.Helper()
	port := startBroker(tb, brokerConf)
	script := bridgeScript(tb)
	r := &rig{}
	busDir := tb.TempDir()
	// sh finds `bus` on PATH: the test binary run as bus, under the same
	// runner as busCommand's (qemu, for other architectures).
	bin := tb.TempDir()
	os.Chmod(bin, 0o755)
	wrapper := "#!/bin/sh\n" + asBus + "=1; export " + asBus + "\nexec " + os.Getenv("BUS_TEST_EXEC_PREFIX") + " '" + testBinary() + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "bus"), []byte(wrapper), 0o755); err != nil {
		tb.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "TMPDIR="+tb.TempDir())
	for i, name := range []string{"A", "B"} {
		r.path[i] = filepath.Join(busDir, name)
		if _, err := Create(r.path[i], true); err != nil {
			tb.Fatal(err)
		}
		path := r.path[i]
		tb.Cleanup(func() { removeQuietly(path) })
		cmd := busCommand("listen", "-r", "3", path)
		rr, rw, err := os.Pipe()
		if err != nil {
			tb.Fatal(err)
		}
		cmd.ExtraFiles = []*os.File{rw}
		r.listener[i] = startLines(tb, cmd, "listener on "+name, false)
		rw.Close()
		waitReady(tb, rr, r.listener[i])
	}
	for i, name := range []string{"A", "B"} {
		cmd := exec.Command("sh", "-c", script, "bus-mqtt", r.path[i], "bus/test", name, "-h", "127.0.0.1", "-p", port)
		cmd.Env = env
		r.bridge[i] = startLines(tb, cmd, "bridge "+name, false)
		r.pid[i] = strconv.Itoa(cmd.Process.Pid) // sh -c's $$
		p := r.bridge[i]
		tb.Cleanup(func() {
			if tb.Failed() {
				tb.Logf("%s (pid %s) said on stderr: %q", p.what, r.pid[i], p.errb.String())
			}
		})
	}
	for _, b := range r.bridge {
		if l := b.next(patience); l.s != "ready" {
			tb.Fatalf("%s printed %q, not ready; stderr: %s", b.what, l.s, b.errb.String())
		}
	}
	return r
}

// waitReady waits for a -r 3 signal on rr.
func waitReady(tb testing.TB, rr *os.File, p *piped) {
	tb.Helper()
	switch b, ok := readReady(rr); {
	case !ok:
		tb.Fatalf("%s not ready after %v; stderr: %s", p.what, patience, p.errb.String())
	case string(b) != "\n":
		tb.Fatalf("%s did not get ready: wrote %q; stderr: %s", p.what, b, p.errb.String())
	}
}

// send starts broadcasting lines on bus i as one stream (`bus broadcast
// -t 10s PATH -`, scaled); sent waits for it.
func (r *rig) send(tb testing.TB, i int, lines []string) *exec.Cmd {
	tb.Helper()
	cmd := busCommand("broadcast", "-t", scaledT(10*time.Second), r.path[i], "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	cmd.Stdout, cmd.Stderr = &syncBuffer{}, &syncBuffer{}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %v: %v", cmd.Args, err)
	}
	return cmd
}

func sent(tb testing.TB, cmd *exec.Cmd) {
	tb.Helper()
	if code, err := waitBounded(cmd, patience); err != nil || code != 0 {
		tb.Fatalf("%v: status %d, %v; stderr: %s", cmd.Args, code, err, cmd.Stderr)
	}
}

// interleaves checks that got is an interleaving of a and b, each whole
// and in its order, and nothing else.
func interleaves(tb testing.TB, where string, got, a, b []string) {
	tb.Helper()
	i, j := 0, 0
	for k, s := range got {
		switch {
		case i < len(a) && s == a[i]:
			i++
		case j < len(b) && s == b[j]:
			j++
		default:
			var want []string
			if i < len(a) {
				want = append(want, strconv.Quote(a[i]))
			}
			if j < len(b) {
				want = append(want, strconv.Quote(b[j]))
			}
			tb.Fatalf("%s: line %d is %q, want %s (a duplicate, a loss, an echo or out of order)", where, k+1, s, strings.Join(want, " or "))
		}
	}
	if i < len(a) || j < len(b) {
		tb.Fatalf("%s: %d of %d and %d of %d lines", where, i, len(a), j, len(b))
	}
}

func TestBridge(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 100
	}
	r := newRig(t, "")
	me := strconv.Itoa(os.Getpid())
	var out [2][]string // what each side sends, as its listener sees it
	var in [2][]string  // what arrives on the other side, from the bridge
	for i, side := range []string{"a", "b"} {
		for k := range n {
			msg := fmt.Sprintf("%s%d", side, k)
			out[i] = append(out[i], me+" "+msg)
			in[1-i] = append(in[1-i], r.pid[1-i]+" "+msg)
		}
	}
	// Both sides at once, as soon as both bridges said ready.
	a, b := r.send(t, 0, out[0]), r.send(t, 1, out[1])
	sent(t, a)
	sent(t, b)
	// Markers, one side at a time: a message that bridge X forwarded
	// echoed back would reach its bus, through the other bridge's one
	// ordered stream, before the marker sent after it.
	sent(t, r.send(t, 0, []string{me + " a-end"}))
	got, _ := r.listener[1].until(r.pid[1]+" a-end", patience)
	interleaves(t, "bus B", got, out[1], append(in[1], r.pid[1]+" a-end"))
	sent(t, r.send(t, 1, []string{me + " b-end"}))
	got, _ = r.listener[0].until(r.pid[0]+" b-end", patience)
	interleaves(t, "bus A", got, append(out[0], me+" a-end"), append(in[0], r.pid[0]+" b-end"))
	sent(t, r.send(t, 0, []string{me + " a-fin"}))
	got, _ = r.listener[1].until(r.pid[1]+" a-fin", patience)
	interleaves(t, "bus B, after b-end", got, []string{me + " b-end"}, []string{r.pid[1] + " a-fin"})
	if l := r.listener[0].next(patience); l.s != me+" a-fin" {
		t.Fatalf("bus A: %q after b-end, want only a-fin", l.s)
	}
	for _, b := range r.bridge {
		select {
		case <-b.done:
			t.Fatalf("%s exited (status %d); stderr: %s", b.what, b.code, b.errb.String())
		default:
		}
		if s := b.errb.String(); s != "" {
			t.Fatalf("%s said on stderr: %s", b.what, s)
		}
	}
}

// BenchmarkBridge: bus A to bus B through the README's bridge and a local
// mosquitto. Latency: from the start of a broadcast on A (in this
// process) to the message's arrival from a `bus listen` on B; beside it,
// the same to a `bus listen` on A itself (the bus alone, and this
// measurement's own cost). Throughput: messages a second one way, for a
// stream of 2,000 from `bus broadcast -` on A, to the last one's arrival
// on B (and on A), with no limit on the broker's queue. first-us: the
// first message after the bridges said ready.
func BenchmarkBridge(b *testing.B) {
	// The stream may run ahead of the incoming side by more than mosquitto
	// queues for a client by default (1,000 messages: it drops the rest);
	// the README says so, and this measures the bridge, not that limit.
	r := newRig(b, "max_queued_messages 0\n")
	bus, err := Open(r.path[0], false)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	me := strconv.Itoa(os.Getpid())
	// The first message after "ready" waits for mosquitto_pub and the
	// incoming subscriber, which start about then, to connect: the time it
	// took is reported apart.
	t0 := time.Now()
	if _, err := bus.Broadcast([]byte(me+" first"), time.Now().Add(patience), false); err != nil {
		b.Fatal(err)
	}
	r.listener[0].until(me+" first", patience)
	_, at := r.listener[1].until(r.pid[1]+" first", patience)
	first := at.Sub(t0)
	var bridged, direct []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := me + " lat" + strconv.Itoa(i)
		t0 := time.Now()
		if _, err := bus.Broadcast([]byte(msg), time.Now().Add(patience), false); err != nil {
			b.Fatal(err)
		}
		l := r.listener[0].next(patience)
		if l.s != msg {
			b.Fatalf("bus A: %q, want %q", l.s, msg)
		}
		direct = append(direct, float64(l.at.Sub(t0).Microseconds()))
		want := r.pid[1] + " lat" + strconv.Itoa(i)
		l = r.listener[1].next(patience)
		if l.s != want {
			b.Fatalf("bus B: %q, want %q", l.s, want)
		}
		bridged = append(bridged, float64(l.at.Sub(t0).Microseconds()))
	}
	b.StopTimer()
	b.ReportMetric(float64(first.Microseconds()), "first-us") // after ResetTimer, which drops metrics
	slices.Sort(bridged)
	slices.Sort(direct)
	b.ReportMetric(median(bridged), "bridge-us-p50")
	b.ReportMetric(bridged[len(bridged)*99/100], "bridge-us-p99")
	b.ReportMetric(median(direct), "direct-us-p50")
	b.ReportMetric(direct[len(direct)*99/100], "direct-us-p99")

	const m = 2000
	lines := make([]string, m)
	for i := range lines {
		lines[i] = me + " tp" + strconv.Itoa(i)
	}
	t0 = time.Now()
	cmd := r.send(b, 0, lines)
	_, directEnd := r.listener[0].until(lines[m-1], patience)
	got, bridgeEnd := r.listener[1].until(r.pid[1]+" tp"+strconv.Itoa(m-1), patience)
	sent(b, cmd)
	if len(got) != m {
		b.Fatalf("bus B got %d lines of the stream, want %d", len(got), m)
	}
	b.ReportMetric(m/bridgeEnd.Sub(t0).Seconds(), "bridge-msgs/s")
	b.ReportMetric(m/directEnd.Sub(t0).Seconds(), "direct-msgs/s")
}
