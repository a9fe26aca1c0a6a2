package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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

func TestParseMode(t *testing.T) {
	for _, c := range []struct {
		in        string
		cur, want uint32
		err       bool
	}{
		{"600", 0o666, 0o600, false},
		{"640", 0o600, 0o640, false},
		{"1", 0o600, 0o001, false},
		{"0", 0o666, 0, false},
		{"0755", 0, 0o755, false},
		{"u", 0o666, 0o700, false},
		{"g", 0o600, 0o070, false},
		{"ug", 0o000, 0o770, false},
		{"=ug", 0o007, 0o770, false},
		{"+o", 0o600, 0o607, false},
		{"-g", 0o660, 0o600, false},
		{"u-g+o", 0o070, 0o707, false},
		{"u=g", 0o000, 0o070, false}, // a new = starts again
		{"a", 0, 0o777, false},
		{"a-o", 0, 0o770, false},
		{"", 0, 0, true},
		{"rw", 0, 0, true},
		{"u+r", 0, 0, true},
		{"8", 0, 0, true},
		{"77777", 0, 0, true},
	} {
		f, err := parseMode(c.in)
		if c.err {
			if err == nil {
				t.Errorf("parseMode(%q) accepted", c.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseMode(%q): %v", c.in, err)
			continue
		}
		// Results are read per class, as objectMode does.
		if got := objectMode(f(c.cur)); got != objectMode(c.want) {
			t.Errorf("parseMode(%q) on %o = %o, want %o", c.in, c.cur, got, objectMode(c.want))
		}
	}
}

func TestModes(t *testing.T) {
	for _, c := range []struct{ classes, obj, file uint32 }{
		{0o700, 0o600, 0o600},
		{0o100, 0o600, 0o600},
		{0o070, 0o060, 0o040},
		{0o007, 0o006, 0o004},
		{0o777, 0o666, 0o644},
		{0, 0, 0},
	} {
		if got := objectMode(c.classes); got != c.obj {
			t.Errorf("objectMode(%o) = %o, want %o", c.classes, got, c.obj)
		}
		if got := fileMode(c.obj); got != c.file {
			t.Errorf("fileMode(%o) = %o, want %o", c.obj, got, c.file)
		}
		if got := objectMode(fileMode(c.obj)); got != c.obj {
			t.Errorf("a file of mode %o reads back as %o, want %o", fileMode(c.obj), got, c.obj)
		}
	}
	if s := modeString(0o640); s != "rw-r-----" {
		t.Errorf("modeString(640) = %q", s)
	}
}

func TestParseOwner(t *testing.T) {
	for _, c := range []struct {
		in        string
		grp       bool
		uid, gid  int
		err       string
		usageFail bool
	}{
		{"root", false, 0, -1, "", false},
		{"0:0", false, 0, 0, "", false},
		{"root:root", false, 0, 0, "", false},
		{"1234", false, 1234, -1, "", false},
		{"1234:5678", false, 1234, 5678, "", false},
		{"root", true, -1, 0, "", false},
		{"42", true, -1, 42, "", false},
		{"nosuchuser-x", false, 0, 0, `no such user "nosuchuser-x"`, false},
		{"root:nosuchgroup-x", false, 0, 0, `no such group "nosuchgroup-x"`, false},
		{"nosuchgroup-x", true, 0, 0, `no such group "nosuchgroup-x"`, false},
		{":root", false, 0, 0, "no user name", true},
		{"root:", false, 0, 0, "no group name", true},
		{"", true, 0, 0, "no group name", true},
	} {
		uid, gid, err := parseOwner(c.in, c.grp)
		if c.err != "" {
			var u *usageError
			if err == nil || !strings.Contains(err.Error(), c.err) || errors.As(err, &u) != c.usageFail {
				t.Errorf("parseOwner(%q, %v) error %v, want %q (usage %v)", c.in, c.grp, err, c.err, c.usageFail)
			}
			continue
		}
		if err != nil || uid != c.uid || gid != c.gid {
			t.Errorf("parseOwner(%q, %v) = %d, %d, %v; want %d, %d", c.in, c.grp, uid, gid, err, c.uid, c.gid)
		}
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

func TestParseArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want options
		err  string
	}{
		{[]string{"create"}, options{name: "create"}, ""},
		{[]string{"create", "-x", "p"}, options{name: "create", excl: true, args: []string{"p"}}, ""},
		{[]string{"-x", "create", "p"}, options{name: "create", excl: true, args: []string{"p"}}, ""},
		{[]string{"-n", "broadcast", "p", "m"}, options{name: "broadcast", nowait: true, args: []string{"p", "m"}}, ""},
		{[]string{"broadcast", "-n", "p", "m"}, options{name: "broadcast", nowait: true, args: []string{"p", "m"}}, ""},
		{[]string{"broadcast", "p", "-n"}, options{name: "broadcast", args: []string{"p", "-n"}}, ""},
		{[]string{"broadcast", "--", "p", "-m"}, options{name: "broadcast", args: []string{"p", "-m"}}, ""},
		{[]string{"-n", "--", "broadcast", "p", "m"}, options{name: "broadcast", nowait: true, args: []string{"p", "m"}}, ""},
		{[]string{"-t", "2s", "wait", "p"}, options{name: "wait", timeout: 2 * time.Second, args: []string{"p"}}, ""},
		{[]string{"wait", "-t=1m", "-0", "p", "cmd"}, options{name: "wait", timeout: time.Minute, nul: true, args: []string{"p", "cmd"}}, ""},
		{[]string{"listen", "-r", "1", "p"}, options{name: "listen", readyFD: 1, args: []string{"p"}}, ""},
		{[]string{"wait", "-x", "p"}, options{}, "flag not known: -x"},
		{[]string{"remove"}, options{}, "missing operand"},
		{[]string{"remove", "a", "b"}, options{}, `extra operand "b"`},
		{[]string{"chmod", "u"}, options{}, "missing operand"},
		{[]string{"wait", "-t", "0", "p"}, options{}, "-t \"0\": the duration must be more than 0"},
		{[]string{"wait", "-t", "1x", "p"}, options{}, "not a duration"},
	} {
		o, err := parseArgs(c.args, &bytes.Buffer{})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseArgs(%q) error %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseArgs(%q): %v", c.args, err)
			continue
		}
		if c.want.readyFD == 0 {
			c.want.readyFD = -1
		}
		if o.name != c.want.name || o.excl != c.want.excl || o.nowait != c.want.nowait || o.nul != c.want.nul ||
			o.timeout != c.want.timeout || o.readyFD != c.want.readyFD || strings.Join(o.args, "|") != strings.Join(c.want.args, "|") {
			t.Errorf("parseArgs(%q) = %+v, want %+v", c.args, *o, c.want)
		}
	}
}

// TestRunInProcess drives run() itself, as u-root's commands are tested.
func TestRunInProcess(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"help", "wait"}, nil, &out, &errb); err != nil || !strings.Contains(out.String(), "bus wait -t 10s") {
		t.Fatalf("help wait: %v %q", err, out.String())
	}
	err := run([]string{"broadcast", "/nonexistent/bus", "x"}, nil, &out, &errb)
	if exitStatus(err, &errb) != 1 || !strings.Contains(errb.String(), "bus: /nonexistent/bus: no such bus file\n") {
		t.Fatalf("got %v, stderr %q", err, errb.String())
	}
}

// The protocol's models (testdata/*.pml, see protocol.md sections 4 to 6)
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
		// Section 4 as protocol.md writes it, with section 5's timeouts,
		// deaths and undo: must pass, whole state space, no compression.
		name:     "racefree",
		model:    "racefree.pml",
		cflags:   []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags: []string{"-m100000"},
	},
	{
		// What proto.go does: the gate closed in the publish call
		// { W 0, Q +1, N +1 }, not when taking X; must pass, and a writer
		// that gives up before publishing must leave Q's gates as it
		// found them (LEAKCHECK).
		name:      "racefree_gate_at_publish",
		model:     "racefree.pml",
		spinFlags: []string{"-DGATE_AT_PUBLISH", "-DLEAKCHECK"},
		cflags:    []string{"-DSAFETY", "-DNOFAIR", "-DMEMLIM=8192"},
		panFlags:  []string{"-m100000"},
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
	spinErrorsRE  = regexp.MustCompile(`errors: (\d+)`)
	spinStoredRE  = regexp.MustCompile(`(\d+) states, stored`)
	spinDepthRE   = regexp.MustCompile(`depth reached (\d+)`)
	spinElapsedRE = regexp.MustCompile(`pan: elapsed time ([0-9.e+]+) seconds`)
	spinMemoryRE  = regexp.MustCompile(`([0-9.]+)\s+total actual memory usage`)
	spinFirstRE   = regexp.MustCompile(`(?m)^pan:1: .*$`)
)

func TestSpinModels(t *testing.T) {
	for _, tool := range []string{"spin", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found in PATH (%v): the protocol models in testdata/*.pml "+
				"must be checked; install spin and gcc (Debian: apt-get install spin gcc)", tool, err)
		}
	}
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
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
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

	stored := firstSubmatch(spinStoredRE, out)
	depth := firstSubmatch(spinDepthRE, out)
	elapsed := firstSubmatch(spinElapsedRE, out)
	mem := firstSubmatch(spinMemoryRE, out)
	t.Logf("%s: spin %s; gcc %s -o pan pan.c; ./pan %s", m.name, strings.Join(spinArgs, " "),
		strings.Join(gccArgs, " "), strings.Join(m.panFlags, " "))
	t.Logf("%s: %s states stored, depth %s, %s s, %s MB", m.name, stored, depth, elapsed, mem)

	errs := firstSubmatch(spinErrorsRE, out)
	if errs == "" || stored == "" {
		t.Fatalf("%s: cannot read pan's report:\n%s", m.name, out)
	}
	if m.wantFail != "" {
		if errs == "0" || !strings.Contains(out, m.wantFail) {
			t.Fatalf("%s: pan should report %q (errors >= 1), got errors: %s:\n%s",
				m.name, m.wantFail, errs, out)
		}
		t.Logf("%s fails as it must: %s", m.name, spinFirstRE.FindString(out))
		return
	}
	if first := spinFirstRE.FindString(out); first != "" {
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
