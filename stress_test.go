package main

// Proof under load, faults and bad input (issue 5): real processes
// broadcasting back to back, listeners and waiters joining and dying at
// random, writers killed mid-broadcast, listeners stopped, buses removed
// under their users, a Go rendering of the C tool's algorithm as a peer, and
// a corpus of bad command lines and bus files.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

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
	q, s, x, nn := semValue(t, path, semQ), semValue(t, path, semS), semValue(t, path, semX), semValue(t, path, semN)
	zq, _ := semctl(id, semQ, semGetz, 0)
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
		{name: "chown on objects that do not exist", setup: keys(0, 0, 0, 0, 0o600), args: []string{"chown", "root", "{P}"}, code: 1, want: "{P}: stale bus: its objects are gone; `bus create {P}` makes it anew"},
		{name: "broadcast with the segment gone", setup: keys(5, 0, 0o600, 0, 0o600), args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: stale bus: its shared memory (key {SHM}) are gone; `bus create {P}` makes it anew, `bus remove {P}` removes it"},
		{name: "semaphores of the wrong size", setup: keys(3, 2048, 0o600, 0o600, 0o600), args: []string{"listen", "{P}"}, code: 1, want: "{P}: not a bus: the semaphores of key {SEM} are not a bus's (wrong size)"},
		{name: "a segment too small", setup: keys(5, 1024, 0o600, 0o600, 0o600), args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: not a bus: the shared memory of key {SHM} are not a bus's (wrong size)"},
		{name: "another user's bus file", setup: file("private", "12\n13\n", 0o600), nobody: true, args: []string{"wait", "{P}"}, code: 1, want: "{P}: permission denied reading the bus file (it belongs to root (uid 0), mode rw-------)"},
		{name: "wait on another user's objects", setup: keys(5, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"wait", "{P}"}, code: 1, want: "{P}: permission denied: listening needs read and write permission on the bus's semaphores, owned by root (uid 0), mode rw-------"},
		{name: "another user's segment", setup: keys(5, 2048, 0o666, 0o600, 0o644), nobody: true, args: []string{"broadcast", "{P}", "x"}, code: 1, want: "{P}: permission denied: broadcasting needs read and write permission on the bus's shared memory, owned by root (uid 0), mode rw-------"},
		{name: "listen on a segment another user may only write", setup: keys(5, 2048, 0o666, 0o622, 0o644), nobody: true, args: []string{"listen", "{P}"}, code: 1, want: "{P}: permission denied: listening needs read permission on the bus's shared memory, owned by root (uid 0), mode rw--w--w-"},
		{name: "remove another user's objects", setup: keys(5, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"remove", "{P}"}, code: 1, want: "{P}: permission denied: only the bus's owner or root may change or remove its semaphores (owned by root (uid 0))"},
		{name: "chown another user's objects", setup: keys(5, 2048, 0o600, 0o600, 0o644), nobody: true, args: []string{"chown", "65534", "{P}"}, code: 1, want: "{P}: permission denied: only the bus's owner or root may change or remove its semaphores (owned by root (uid 0))"},
		{name: "create where one may not write", setup: path("nobodys"), nobody: true, args: []string{"create", "{P}"}, code: 1, want: "{P}: permission denied creating the bus file (its folder belongs to root (uid 0), mode rwxr-xr-x)"},

		// Messages.
		{name: "an empty message is legal", setup: busAt, args: []string{"broadcast", "{P}", ""}, code: 0},
		{name: "an empty line is legal", setup: busAt, stdin: "\n", args: []string{"broadcast", "{P}"}, code: 0},
		{name: "a 2048-byte record", setup: busAt, stdin: long + "\x00", args: []string{"broadcast", "-0", "{P}"}, code: 1, want: "{P}: stdin record 1: message too long (2048 bytes; at most 2047); it and what follows were not sent"},
		{name: "a NUL in a line", setup: busAt, stdin: "ok\na\x00b\n", args: []string{"broadcast", "{P}", "-"}, code: 1, want: "{P}: stdin line 2: message has a NUL byte at offset 1; it and what follows were not sent"},
		{name: "a surrogate half", setup: busAt, args: []string{"broadcast", "{P}", "\xed\xa0\x80"}, code: 1, want: "{P}: message is not valid UTF-8; nothing sent"},
		{name: "an overlong encoding", setup: busAt, stdin: "\xc0\xaf\n", args: []string{"broadcast", "{P}"}, code: 1, want: "{P}: stdin line 1: message is not valid UTF-8; it and what follows were not sent"},
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
	bus(t, "", "create", link).expect(t, 1, link+": no such bus file")
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
