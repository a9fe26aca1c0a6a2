package main

// The protocol (proto.go): the bus file's keys, messages, random names, the
// spin models of testdata/*.pml (each with a mutant that must fail), the
// gate that must not leak, and the fuzz targets of the protocol's parsers.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseKeys(t *testing.T) {
	for _, c := range []struct {
		in       string
		sem, shm int32
		err      string
	}{
		{"1026582770\n336138497\n", 1026582770, 336138497, ""}, // the C tool's example
		{"1026582\n336138497\n", 1026582, 336138497, ""},
		{"1\n1073741823\n", 1, 1073741823, ""},
		{"+5\n6\n", 5, 6, ""}, // atoll takes a sign; so do we
		{"", 0, 0, "empty"},
		{"5\n", 0, 0, "only one line"},
		{"5", 0, 0, "line 1 is not ended by a newline"},
		{"5\n6", 0, 0, "line 2 is not ended by a newline"},
		{"5\n6\n7\n", 0, 0, "more than two lines"},
		{"5\n6\n\n", 0, 0, "more than two lines"},
		{"\n6\n", 0, 0, "line 1 is empty"},
		{"0\n6\n", 0, 0, "line 1 is out of range"},
		{"-5\n6\n", 0, 0, "line 1 is out of range"},
		{"5\n1073741824\n", 0, 0, "line 2 is out of range"},
		{"5\n99999999999999999999\n", 0, 0, "line 2 is not a decimal key"},
		{" 5\n6\n", 0, 0, "line 1 is not a decimal key"},
		{"5 \n6\n", 0, 0, "line 1 is not a decimal key"},
		{"0x10\n6\n", 0, 0, "line 1 is not a decimal key"},
		{"5\r\n6\r\n", 0, 0, "line 1 is not a decimal key"},
		{"-\n6\n", 0, 0, "line 1 is not a decimal key"},
	} {
		sem, shm, err := parseKeys([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("parseKeys(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || sem != c.sem || shm != c.shm {
			t.Errorf("parseKeys(%q) = %d, %d, %v; want %d, %d", c.in, sem, shm, err, c.sem, c.shm)
		}
		if c.in[0] != '+' && !bytes.Equal(formatKeys(sem, shm), []byte(c.in)) {
			t.Errorf("formatKeys(%d, %d) = %q, want %q", sem, shm, formatKeys(sem, shm), c.in)
		}
	}
}

func TestRandomKeysAndNames(t *testing.T) {
	seen := map[int32]bool{}
	for range 1000 {
		k, err := randomKey()
		if err != nil || k < 1 || k > maxKey {
			t.Fatalf("key %d out of range", k)
		}
		seen[k] = true
	}
	if len(seen) < 990 {
		t.Fatalf("only %d distinct keys in 1000", len(seen))
	}
	counts := map[rune]int{}
	for range 200 {
		n, err := randomName()
		if err != nil || len(n) != 37 || !strings.HasPrefix(n, "random.") {
			t.Fatalf("name %q", n)
		}
		for _, c := range n[7:] {
			counts[c]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters in 6000, want all 62", len(counts))
	}
}

func TestCheckMessage(t *testing.T) {
	for _, c := range []struct {
		msg string
		err string
	}{
		{"", ""},
		{"0 hello", ""},
		{"1234 héllo wörld ✓", ""},
		{strings.Repeat("x", 2047), ""},
		{strings.Repeat("x", 2048), "message too long (2048 bytes; at most 2047)"},
		{strings.Repeat("é", 1024), "message too long (2048 bytes; at most 2047)"},
		{"a\x00b", "message has a NUL byte at offset 1"},
		{"\xff", "message is not valid UTF-8"},
		{"\xc3", "message is not valid UTF-8"},
		{"\xed\xa0\x80", "message is not valid UTF-8"}, // a surrogate
	} {
		err := checkMessage([]byte(c.msg))
		if (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("checkMessage(%.20q) = %v, want %q", c.msg, err, c.err)
		}
	}
}

// The protocol's models (testdata/*.pml; the protocol is bus(5)'s and proto.go's)
// checked with the spin model checker. spin and gcc are required: without
// them the test fails, so a CI run cannot pass without the check.

type spinModel struct {
	name      string
	model     string   // the model spin is run on, in testdata
	include   []string // other testdata files it includes
	spinFlags []string // -D flags for spin -a
	cflags    []string // -D flags for pan.c, besides -O2
	panFlags  []string
	// wantFail is the text pan must report for a model that must fail
	// (at least one error); empty for a model that must pass exhaustively.
	wantFail string
}

var spinModels = []spinModel{
	{
		// The protocol as first designed (the gate closed at the take), with
		// timeouts, deaths and undo: must pass, whole state space, no
		// compression.
		name:     "racefree",
		model:    "racefree.pml",
		cflags:   []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags: []string{"-m100000"},
	},
	{
		// What proto.go does: the take waits for W = 0 too { X -1, W 0 }
		// (fair joins), the gate closes in the publish call
		// { W 0, Q +1, N +1 }, not when taking X, and every listener waits
		// for N and re-arms in one call { N 0, S +1, Q +1, W -1 }; must
		// pass, and a writer that gives up before publishing must leave
		// Q's gates as it found them (LEAKCHECK).
		name:      "racefree_take_w0",
		model:     "racefree.pml",
		spinFlags: []string{"-DGATE_AT_PUBLISH", "-DTAKE_W0", "-DLEAKCHECK", "-DWAITN_REARM=7"},
		cflags:    []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags:  []string{"-m100000"},
	},
	{
		// The same with the steady listener waiting { N 0 } and re-arming
		// in a call of its own, as a listener of an older bus does beside
		// the others on the same bus; must pass.
		name:      "racefree_take_w0_mixed_rearm",
		model:     "racefree.pml",
		spinFlags: []string{"-DGATE_AT_PUBLISH", "-DTAKE_W0", "-DLEAKCHECK", "-DWAITN_REARM=6"},
		cflags:    []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags:  []string{"-m100000"},
	},
	{
		// The one call without its N 0, re-arming as soon as counted out:
		// the writer's re-release hands the listener the same message
		// again. Must fail.
		name:      "racefree_take_w0_rearm_without_n0",
		model:     "racefree.pml",
		spinFlags: []string{"-DGATE_AT_PUBLISH", "-DTAKE_W0", "-DWAITN_REARM=7", "-DNO_WAITN"},
		cflags:    []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags:  []string{"-m100000"},
		wantFail:  "assertion violated",
	},
	{
		// The take { X -1 } alone (the writer before fair joins); must
		// pass. (Writers of both kinds on one bus, -DOLDTAKE=1 with
		// TAKE_W0, pass too: checked by hand, see racefree.pml.)
		name:      "racefree_gate_at_publish",
		model:     "racefree.pml",
		spinFlags: []string{"-DGATE_AT_PUBLISH", "-DLEAKCHECK"},
		cflags:    []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags:  []string{"-m100000"},
	},
	{
		// The fair take relies on W = 0 meaning every listener re-armed:
		// with W given back before the re-arm { W -1 }, { S +1, Q +1 }, a
		// writer takes X and finishes a round that a registered listener
		// missed. Must fail.
		name:      "racefree_take_w0_split_rearm",
		model:     "racefree.pml",
		spinFlags: []string{"-DGATE_AT_PUBLISH", "-DTAKE_W0", "-DSPLIT_REARM"},
		cflags:    []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags:  []string{"-m100000"},
		wantFail:  "assertion violated",
	},
	{
		// The take's W 0 does not make publish's W 0 redundant: a dead
		// writer's open gate lets a listener take W in between, and a
		// publish without W 0 tears its copy. Must fail.
		name:      "racefree_take_w0_publish_without_w0",
		model:     "racefree.pml",
		spinFlags: []string{"-DGATE_AT_PUBLISH", "-DTAKE_W0", "-DNOPUBW0"},
		cflags:    []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags:  []string{"-m100000"},
		wantFail:  "assertion violated",
	},
	{
		// Section 4 as written leaks a gate on Q per writer that times out
		// waiting for W (TestGateDoesNotLeak): LEAKCHECK must fail.
		name:      "racefree_gate_at_take_leaks",
		model:     "racefree.pml",
		spinFlags: []string{"-DLEAKCHECK"},
		cflags:    []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags:  []string{"-m100000"},
		wantFail:  "assertion violated",
	},
	{
		// Section 4 without the writer's gate: must tear a copy.
		name:     "racefree_nogate",
		model:    "racefree_nogate.pml",
		include:  []string{"racefree.pml"},
		cflags:   []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags: []string{"-m100000"},
		wantFail: "assertion violated",
	},
	{
		// Section 2, the C tool's algorithm: must deadlock.
		name:     "reference",
		model:    "reference.pml",
		cflags:   []string{"-DSAFETY", "-DNOFAIR"},
		panFlags: []string{"-m10000"},
		wantFail: "invalid end state",
	},
}

var (
	spinErrorsRE  = lazyRE(`errors: (\d+)`)
	spinStoredRE  = lazyRE(`(\d+) states, stored`)
	spinDepthRE   = lazyRE(`depth reached (\d+)`)
	spinElapsedRE = lazyRE(`pan: elapsed time ([0-9.e+]+) seconds`)
	spinMemoryRE  = lazyRE(`([0-9.]+)\s+total actual memory usage`)
	spinFirstRE   = lazyRE(`(?m)^pan:1: .*$`)
)

func TestSpinModels(t *testing.T) {
	for _, tool := range []string{"spin", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found in PATH (%v): the protocol models in testdata/*.pml "+
				"must be checked; install spin and gcc (Debian: apt-get install spin gcc)", tool, err)
		}
	}
	// Beside TestArches and TestKernels: the models use one core for
	// about 100 s, and the sequential tests have all run by then.
	t.Parallel()
	for _, m := range spinModels {
		t.Run(m.name, func(t *testing.T) {
			checkSpinModel(t, m)
		})
	}
}

func checkSpinModel(t *testing.T, m spinModel) {
	dir := t.TempDir()
	for _, name := range append([]string{m.model}, m.include...) {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Stopped half a minute before the test binary's -timeout, so that a
	// loaded machine (where a model takes many times as long) gets a
	// failure that says so, not a panic.
	ctx := context.Background()
	if end, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, end.Add(-30*time.Second))
		defer cancel()
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("%s %s: not done before the test binary's -timeout: on a loaded machine the models take many times as long; give go test a longer -timeout",
				name, strings.Join(args, " "))
		}
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	spinArgs := append(append([]string{}, m.spinFlags...), "-a", m.model)
	run("spin", spinArgs...)
	gccArgs := append([]string{"-O2", "-w"}, m.cflags...)
	run("gcc", append(gccArgs, "-o", "pan", "pan.c")...)
	out := run("./pan", m.panFlags...)

	stored := firstSubmatch(spinStoredRE(), out)
	depth := firstSubmatch(spinDepthRE(), out)
	elapsed := firstSubmatch(spinElapsedRE(), out)
	mem := firstSubmatch(spinMemoryRE(), out)
	t.Logf("%s: spin %s; gcc %s -o pan pan.c; ./pan %s", m.name, strings.Join(spinArgs, " "),
		strings.Join(gccArgs, " "), strings.Join(m.panFlags, " "))
	t.Logf("%s: %s states stored, depth %s, %s s, %s MB", m.name, stored, depth, elapsed, mem)

	errs := firstSubmatch(spinErrorsRE(), out)
	if errs == "" || stored == "" {
		t.Fatalf("%s: cannot read pan's report:\n%s", m.name, out)
	}
	if m.wantFail != "" {
		if errs == "0" || !strings.Contains(out, m.wantFail) {
			t.Fatalf("%s: pan should report %q (errors >= 1), got errors: %s:\n%s",
				m.name, m.wantFail, errs, out)
		}
		t.Logf("%s fails as it must: %s", m.name, spinFirstRE().FindString(out))
		return
	}
	if first := spinFirstRE().FindString(out); first != "" {
		t.Errorf("%s: %s", m.name, first)
	}
	for _, bad := range []string{
		"invalid end state (", // not the banner's "invalid end states +"
		"assertion violated",
		"max search depth too small", // the search was cut short
		"MEMLIM",                     // ran out of its memory bound
		"out of memory",
	} {
		if strings.Contains(out, bad) {
			t.Errorf("%s: pan reports %q", m.name, bad)
		}
	}
	if errs != "0" {
		t.Errorf("%s: pan reports errors: %s", m.name, errs)
	}
	if !strings.Contains(out, "Full statespace search") {
		t.Errorf("%s: not a full state space search", m.name)
	}
	if t.Failed() {
		t.Logf("pan output:\n%s", out)
	}
}

func firstSubmatch(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// Fuzz targets for every parser of outside input: the bus file, chmod's
// permissions, chown's owners, the command line (-t's durations above all)
// and messages. Each checks properties, not only the absence of a panic.
// Seeds are in testdata/fuzz/<FuzzName>/; `go test` runs them as tests, and
// `go test -run XXX -fuzz FuzzName -fuzztime 20s` searches further.

// keyLine is the bus file's grammar, written independently of parseKey:
// an optional + (atoll takes one), 1 to 19 digits.
var keyLine = lazyRE(`^\+?([0-9]{1,19})$`)

// modelKeys is what parseKeys must accept: exactly two newline-ended lines,
// each a key in 1..2^30-1.
func modelKeys(data []byte) (sem, shm int32, ok bool) {
	s := string(data)
	if !strings.HasSuffix(s, "\n") {
		return 0, 0, false
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 2 {
		return 0, 0, false
	}
	var keys [2]int32
	for i, l := range lines {
		m := keyLine().FindStringSubmatch(l)
		if m == nil {
			return 0, 0, false
		}
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil || v < 1 || v > maxKey {
			return 0, 0, false
		}
		keys[i] = int32(v)
	}
	return keys[0], keys[1], true
}

var keysErrors = lazyRE(`^(empty|only one line|more than two lines|line [12] (is not ended by a newline|is empty|is not a decimal key|is out of range \(keys are 1 to 1073741823\)))$`)

func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{
		"1026582770\n336138497\n", "1\n1073741823\n", "+5\n6\n", "0005\n6\n",
		"", "5\n", "5", "5\n6", "5\n6\n7\n", "\n6\n", "0\n6\n", "-5\n6\n",
		"5\n1073741824\n", "5\n99999999999999999999\n", "5\n9999999999999999999\n",
		"5\n9223372036854775808\n", " 5\n6\n", "5\r\n6\r\n", "\xff\n\x00\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sem, shm, err := parseKeys(data)
		msem, mshm, ok := modelKeys(data)
		if (err == nil) != ok {
			t.Fatalf("parseKeys(%q): %v, but the grammar says ok=%v", data, err, ok)
		}
		if err != nil {
			if !keysErrors().MatchString(err.Error()) {
				t.Fatalf("parseKeys(%q): unexpected wording %q", data, err)
			}
			return
		}
		if sem != msem || shm != mshm {
			t.Fatalf("parseKeys(%q) = %d, %d; the grammar reads %d, %d", data, sem, shm, msem, mshm)
		}
		// What is accepted round-trips through the canonical form.
		canon := formatKeys(sem, shm)
		s2, h2, err := parseKeys(canon)
		if err != nil || s2 != sem || h2 != shm {
			t.Fatalf("formatKeys(%d, %d) = %q reads back as %d, %d, %v", sem, shm, canon, s2, h2, err)
		}
		if len(canon) > 64 {
			t.Fatalf("formatKeys gives %d bytes, more than readBusFile reads", len(canon))
		}
	})
}

// FuzzFormatKeys: parseKeys accepts exactly what formatKeys writes for keys
// in range, and refuses it for keys out of range.
func FuzzFormatKeys(f *testing.F) {
	for _, k := range [][2]int32{{1, 1}, {1026582770 & maxKey, 336138497}, {maxKey, maxKey}, {0, 5}, {-1, 5}, {5, maxKey + 1}, {-1 << 31, 1<<31 - 1}} {
		f.Add(k[0], k[1])
	}
	f.Fuzz(func(t *testing.T, sem, shm int32) {
		data := formatKeys(sem, shm)
		s2, h2, err := parseKeys(data)
		inRange := sem >= 1 && sem <= maxKey && shm >= 1 && shm <= maxKey
		if inRange != (err == nil) {
			t.Fatalf("formatKeys(%d, %d) = %q: parseKeys says %v", sem, shm, data, err)
		}
		if inRange && (s2 != sem || h2 != shm) {
			t.Fatalf("formatKeys(%d, %d) reads back as %d, %d", sem, shm, s2, h2)
		}
		if !inRange && !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("keys %d, %d: %v, want out of range", sem, shm, err)
		}
	})
}

// FuzzCheckMessage: a message is sendable exactly when it is at most 2047
// bytes of UTF-8 without NUL, and then it comes out of the segment as it
// went in, whatever the segment held before.
func FuzzCheckMessage(f *testing.F) {
	for _, s := range []string{"", "0 hello", "1 ready", strings.Repeat("é", 1023) + "x", strings.Repeat("x", 2048),
		"bad \xc3", "a\x00b", "\xed\xa0\x80", "\xc0\xaf", "\xef\xbf\xbd", "\U0010FFFF", "line\nline"} {
		f.Add([]byte(s), byte(0xff))
	}
	f.Fuzz(func(t *testing.T, msg []byte, junk byte) {
		err := checkMessage(msg)
		want := len(msg) <= maxMessage && bytes.IndexByte(msg, 0) < 0 && utf8.Valid(msg)
		if (err == nil) != want {
			t.Fatalf("checkMessage(%q) = %v, want ok=%v", msg, err, want)
		}
		if err != nil {
			m := err.Error()
			if !strings.HasPrefix(m, "message too long ("+strconv.Itoa(len(msg))+" bytes; at most 2047)") &&
				!strings.HasPrefix(m, "message has a NUL byte at offset "+strconv.Itoa(bytes.IndexByte(msg, 0))) &&
				m != "message is not valid UTF-8" {
				t.Fatalf("checkMessage(%q): unexpected wording %q", msg, m)
			}
			return
		}
		// The writer's encoding (Broadcast) and the listener's decoding
		// (Next), on a segment full of something else.
		seg := bytes.Repeat([]byte{junk | 1}, shmSize)
		n := copy(seg[:maxMessage], msg)
		seg[n] = 0
		var buf [shmSize]byte
		copy(buf[:], seg)
		got := buf[:]
		if i := bytes.IndexByte(got, 0); i >= 0 {
			got = got[:i]
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("message %q came out of the segment as %q", msg, got)
		}
	})
}

// TestGateDoesNotLeak: writers that time out before publishing (a listener
// holds W: stopped between its release and its re-arm) must leave Q as they
// found it. Closing the gate when taking X, as the protocol's first design
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
	bus(t, "", "broadcast", "-t", scaledT(5*time.Second), path, "0 still works").expect(t, 0, "")
	if got := l.next(); got != "0 still works" {
		t.Fatalf("got %q", got)
	}
}

// TestClosedBus: a Bus used after Close (a goroutine that outlived its
// test's deferred Close) fails with an error, not a panic on the segment.
func TestClosedBus(t *testing.T) {
	path := newBus(t)
	b, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Close() // twice is harmless
	if _, err := b.Broadcast([]byte("0 late"), time.Now().Add(patience), false); !errors.Is(err, errClosed) {
		t.Fatalf("Broadcast after Close: %v, want %v", err, errClosed)
	}
	var buf [shmSize]byte
	if _, err := b.Next(&buf, time.Time{}); !errors.Is(err, errClosed) {
		t.Fatalf("Next after Close: %v, want %v", err, errClosed)
	}
	if err := b.Join(time.Time{}); !errors.Is(err, errClosed) {
		t.Fatalf("Join after Close: %v, want %v", err, errClosed)
	}
	if got := semValue(t, path, semX); got != 1 {
		t.Fatalf("X = %d after the failed calls, want 1 (nothing taken)", got)
	}
}
