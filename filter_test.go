package main

// listen and wait with -v (the messages -m does not match), end to end with
// real processes; -v without -m is a usage error.

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInvertFilter(t *testing.T) {
	path := newBus(t)
	l := startListener(t, nil, "listen", "-v", "-m", "^a", path)
	w := startListener(t, nil, "wait", "-v", "-m", "^a", path)
	// A bridge's own echo, dropped by pid: the form the README's bridge uses.
	self := startListener(t, nil, "listen", "-m", "^123 ", "-v", path)
	for _, m := range []string{"a1", "b1", "a2", "123 echo", "b2"} {
		bus(t, "", "broadcast", "-t", scaledT(10*time.Second), path, m).expect(t, 0, "")
	}
	if got := w.next(); got != "b1" {
		t.Fatalf("wait -v -m '^a' got %q, want b1", got)
	}
	if code := w.exit(); code != 0 {
		t.Fatalf("wait -v exited %d; stderr: %s", code, w.errb.String())
	}
	for _, want := range []string{"b1", "123 echo", "b2"} {
		if got := l.next(); got != want {
			t.Fatalf("listen -v -m '^a' got %q, want %q", got, want)
		}
	}
	for _, want := range []string{"a1", "b1", "a2", "b2"} {
		if got := self.next(); got != want {
			t.Fatalf("listen -m '^123 ' -v got %q, want %q", got, want)
		}
	}
	// -v=false is plain -m.
	w2 := startListener(t, nil, "wait", "-v=false", "-m", "^a", path)
	bus(t, "", "broadcast", "-t", scaledT(10*time.Second), path, "b3").expect(t, 0, "")
	bus(t, "", "broadcast", "-t", scaledT(10*time.Second), path, "a3").expect(t, 0, "")
	if got := w2.next(); got != "a3" {
		t.Fatalf("wait -v=false -m '^a' got %q, want a3", got)
	}
	// wait -v with a command: the command gets the message and its status is
	// wait's.
	w3 := startListener(t, nil, "wait", "-v", "-m", "^a", path, `test "$msg" = b4 && exit 7`)
	bus(t, "", "broadcast", "-t", scaledT(10*time.Second), path, "a4").expect(t, 0, "")
	bus(t, "", "broadcast", "-t", scaledT(10*time.Second), path, "b4").expect(t, 0, "")
	if code := w3.exit(); code != 7 {
		t.Fatalf("wait -v COMMAND exited %d, want the command's 7; stderr: %s", code, w3.errb.String())
	}
	// A timeout with nothing selected is 124, as with -m.
	bus(t, "", "wait", "-t", "200ms", "-v", "-m", "", path).expect(t, 124, "no matching message")
}

func TestInvertFilterUsage(t *testing.T) {
	path := newBus(t)
	for _, args := range [][]string{
		{"listen", "-v", path},
		{"wait", "-v", path},
		{"-v", "wait", path},
		{"wait", "-v", "-t", "1s", path, "true"},
	} {
		r := bus(t, "", args...)
		r.expect(t, 2, "-v needs -m")
		sub := "wait"
		if slices.Contains(args, "listen") {
			sub = "listen"
		}
		if !strings.Contains(r.stderr, "usage: bus "+subcommands[sub].synopsis) {
			t.Fatalf("bus %q: no synopsis of %s: %q", args, sub, r.stderr)
		}
	}
	for _, args := range [][]string{
		{"broadcast", "-v", path, "x"},
		{"create", "-v", path},
	} {
		bus(t, "", args...).expect(t, 2, "flag not known: -v")
	}
	// Nothing was registered by the refused command lines.
	if n := semValue(t, path, semS); n != 0 {
		t.Fatalf("S = %d after refused command lines, want 0", n)
	}
}
