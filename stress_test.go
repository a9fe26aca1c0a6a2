package main

// Stress and faults: bursts, many writers, churn of listeners and writers
// joining, leaving and being killed, a stopped listener, a bus removed
// under its users; nothing lost, duplicated or reordered, and the bus left
// at rest.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBurst is the case that deadlocks the C reference within a few
// messages: one process broadcasting back to back to 4 listeners.
func TestBurst(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000 // the inner runs: 10000 took 1 to 2 minutes of CPU in a TCG guest
	}
	if emulated() {
		n = 500 // 2000 took 17 s in an arm64 guest
	}
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
	// However the test ends (a listener never ready fails it here), the
	// broadcasts stop before the deferred Close: the bus is not closed
	// under them, nor t used after the test.
	halted := false
	halt := func() int {
		if halted {
			return 0
		}
		halted = true
		close(stop)
		return <-sent
	}
	defer halt()
	for k := range 20 {
		victim := startListener(t, nil, "listen", path)
		// Let it take a few messages, a different number each time.
		for range k % 5 {
			victim.next()
		}
		victim.kill()
	}
	n := halt()
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

// TestStressWriters: 4 writer processes broadcast back to back into 16
// listener processes; every listener gets every message exactly once, in
// each writer's order.
func TestStressWriters(t *testing.T) {
	writers, listeners, each := 4, 16, 25000
	if testing.Short() {
		each = 250 // the inner runs of TestArches, under qemu, are short
	}
	if emulated() {
		// 4 x 250 to 16 took 112 s in an arm64 guest (TestKernels): 20
		// processes on one emulated CPU. The ABI is the same with fewer.
		listeners, each = 6, 100
	}
	path := newBus(t)
	var ls []*listener
	for range listeners {
		ls = append(ls, startListener(t, nil, "listen", path))
	}
	total := writers * each
	var tallies []<-chan *tally
	for _, l := range ls {
		tallies = append(tallies, collect(l, total, scaled(150*time.Second)))
	}
	start := time.Now()
	var ws []*writer
	for range writers {
		ws = append(ws, startWriter(t, path, each, nil))
	}
	for _, w := range ws {
		if code := w.wait(scaled(150 * time.Second)); code != 0 || w.sent != each {
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

// TestChurn: while writers broadcast, listeners and one-shot waiters join
// and are SIGKILLed at random points, hundreds of times. Writers (with -t)
// never time out, steady listeners miss nothing, and the bus ends at rest.
func TestChurn(t *testing.T) {
	rounds := 400
	if testing.Short() {
		rounds = 25
	}
	if emulated() {
		rounds = 10 // 25 took 23 s in an arm64 guest
	}
	path := newBus(t)
	steady := []*listener{startListener(t, nil, "listen", path), startListener(t, nil, "listen", path)}
	stop := make(chan struct{})
	ws := []*writer{
		startWriter(t, path, -1, stop, "-t", scaledT(5*time.Second)),
		startWriter(t, path, -1, stop, "-t", scaledT(5*time.Second)),
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
	// The writers still send what their stdin holds: up to a pipe's worth
	// (64 KiB, thousands of messages), which takes a TCG guest (TestKernels,
	// milliseconds a message) longer than patience. So they are given as
	// long as the steady listeners keep receiving, and fail after patience
	// without a message.
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return tallies[0].total + tallies[1].total
	}
	for _, w := range ws {
		last, lastAt := received(), time.Now()
		for running := true; running; {
			select {
			case <-w.done:
				running = false
			case <-time.After(100 * time.Millisecond):
				if n := received(); n != last {
					last, lastAt = n, time.Now()
				} else if time.Since(lastAt) > patience {
					w.cmd.Process.Kill()
					t.Fatalf("writer %d still running, and no message came for %v (%d received); stderr: %s",
						w.cmd.Process.Pid, patience, n, w.errb.String())
				}
			}
		}
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
		bus(t, "", "broadcast", "-t", scaledT(5*time.Second), path, end).expect(t, 0, "")
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
	// gives up after 300ms (scaled: the good listeners take it within), so the
	// stream ends cleanly once it is.
	type outcome struct {
		msg    string
		missed int
		err    error
	}
	results := make(chan []outcome, 1)
	quit, finished := make(chan struct{}), make(chan struct{})
	// However the test ends, the stream stops before the deferred Close.
	defer func() { close(quit); <-finished }()
	go func() {
		defer close(finished)
		var out []outcome
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			msg := "0 " + strconv.Itoa(i)
			missed, err := b.Broadcast([]byte(msg), time.Now().Add(scaled(300*time.Millisecond)), false)
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
		r := bus(t, "", "broadcast", "-t", scaledT(200*time.Millisecond), path, msg)
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
		bus(t, "", "broadcast", "-t", scaledT(5*time.Second), path, msg).expect(t, 0, "")
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
	code, err := waitBounded(w, scaled(5*time.Second))
	if err != nil || code != 1 || werr.String() != "bus: "+path+": the bus was removed\n" {
		t.Fatalf("writer: status %d (%v), stderr %q; want 1, the bus was removed", code, err, werr.String())
	}
	code, err = waitBounded(joiner, scaled(5*time.Second))
	if err != nil || code != 1 || jerr.String() != "bus: "+path+": the bus was removed\n" {
		t.Fatalf("joining listener: status %d (%v), stderr %q; want 1, the bus was removed", code, err, jerr.String())
	}
	for i, l := range append(ls, stopped) {
		select {
		case <-l.done:
		case <-time.After(scaled(5 * time.Second)):
			t.Fatalf("%v still running %v after the bus was removed", l.cmd.Args[1:], scaled(5*time.Second))
		}
		if l.code != 1 || l.errb.String() != "bus: "+path+": the bus was removed\n" {
			t.Fatalf("%d %v: status %d, stderr %q; want 1, the bus was removed", i, l.cmd.Args[1:], l.code, l.errb.String())
		}
		// Not a spin: it slept until told. (Under qemu, user or system
		// (TestKernels sets BUS_TEST_EMULATED: 1.5 s on arm64), starting up
		// alone takes most of a second of CPU.)
		limit := time.Second
		if emulated() {
			limit = 5 * time.Second
		}
		if cpu := l.cmd.ProcessState.UserTime() + l.cmd.ProcessState.SystemTime(); cpu > limit {
			t.Fatalf("%v used %v of CPU", l.cmd.Args[1:], cpu)
		}
	}
	t.Logf("every user of the bus exited within %v of its removal", time.Since(start).Round(time.Millisecond))
}
