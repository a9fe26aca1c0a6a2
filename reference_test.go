package main

// The C tool's algorithm as a peer (each step its own semop, as libbus
// does): compatibility with C listeners and writers, its deadlock, and the
// re-release that frees a late C listener (race R2).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The C tool's algorithm (testdata/reference.pml models it), for a peer that behaves
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

// startRefListener runs a reference listener as a process of its own,
// arming late by late (refLateEnv) if not 0, and returns once it has
// joined.
func startRefListener(t *testing.T, path string, late time.Duration) *listener {
	t.Helper()
	argv := append(strings.Fields(os.Getenv("BUS_TEST_EXEC_PREFIX")), testBinary())
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), refListenerEnv+"="+path)
	what := "reference listener"
	if late > 0 {
		cmd.Env = append(cmd.Env, refLateEnv+"="+late.String())
		what = "late " + what
	}
	return startReady(t, cmd, what)
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
	ref := startRefListener(t, path, 0)
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
	ref := startRefListener(t, path, 20*time.Microsecond)
	per := broadcastLoop(t, path, n)
	expectSequence(t, ref, n)
	checkIdle(t, path, 1)
	t.Logf("%d messages to a reference listener that always arms late: %.1f µs a message (re-release after %v)",
		n, float64(per.Nanoseconds())/1e3, rereleaseFirst)
}

// TestReferenceDeadlock: the reference writer and the reference listener
// together reach race R1 (bus(5), "the races of the C tool"): the listener arms after
// the writer's release and waits in Z(Q), the writer waits in Z(S). It
// shows that the peer is faithful to the C algorithm, whose flaw this
// project's protocol removes. The listener is made late (it spins between
// giving W back and its arm, where a C listener is preempted now and
// then): left to chance, R1 may not come in 20,000 messages on one CPU.
func TestReferenceDeadlock(t *testing.T) {
	path := newBus(t)
	stall := scaled(500 * time.Millisecond)
	if os.Getenv("BUS_TEST_EXEC_PREFIX") != "" {
		stall = max(stall, 5*time.Second) // under qemu, slowness alone can last 500 ms
	}
	// Late by half the writer's patience: the writer's release, a few
	// system calls after the listener gives W back, comes first, and the
	// listener's arm comes before the writer gives up.
	ref := startRefListener(t, path, stall/2)
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
	const limit = 20 // each a release the listener arms after, unless the writer is slower than stall/2
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
// (bus(5) says R2 can lock C listeners among themselves; here one is
// enough, beside one of ours.) The C
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
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		_, err := w.Broadcast([]byte("0 first"), time.Now().Add(patience), false)
		done <- err
	}()
	// The broadcast ends before the deferred Close, however the test ends.
	defer func() { <-finished }()
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
