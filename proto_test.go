package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
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
		// What the flag package accepted, parseFlags accepts.
		{[]string{"create", "--x", "p"}, options{name: "create", excl: true, args: []string{"p"}}, ""},
		{[]string{"create", "-x=true", "-x=false", "p"}, options{name: "create", args: []string{"p"}}, ""},
		{[]string{"wait", "--t", "3s", "-0=1", "p"}, options{name: "wait", timeout: 3 * time.Second, nul: true, args: []string{"p"}}, ""},
		{[]string{"wait", "-m=^a=b$", "p"}, options{name: "wait", args: []string{"p"}}, ""},
		{[]string{"broadcast", "-", "m"}, options{name: "broadcast", args: []string{"-", "m"}}, ""},
		{[]string{"create", "-x=maybe", "p"}, options{}, `-x "maybe": not true or false`},
		{[]string{"create", "---x", "p"}, options{}, "bad flag syntax: ---x"},
		{[]string{"create", "-=x", "p"}, options{}, "bad flag syntax: -=x"},
		{[]string{"wait", "p", "-t"}, options{name: "wait", args: []string{"p", "-t"}}, ""},
		{[]string{"wait", "-t"}, options{}, "flag needs an argument: -t"},
		{[]string{"wait", "-xy", "p"}, options{}, "flag not known: -xy"},
		{[]string{"wait", "-m", "(", "p"}, options{}, `-m "(": missing closing ): ` + "`(`"},
		{[]string{"listen", "-r", "x", "p"}, options{}, `-r "x": not a file descriptor number`},
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

func TestParseArgsHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"wait", "-h"}, {"wait", "-help", "p"}, {"wait", "--h"}} {
		var out bytes.Buffer
		if _, err := parseArgs(args, &out); err != errHelp || !strings.HasPrefix(out.String(), "bus: ") && !strings.HasPrefix(out.String(), "usage: bus wait") {
			t.Errorf("parseArgs(%q) = %v, printing %.30q; want help", args, err, out.String())
		}
	}
}

// TestSprintf holds sprintf and errorf to what fmt makes of the same
// formats, for every verb bus uses.
func TestSprintf(t *testing.T) {
	errno := syscall.ENOENT
	for _, c := range []struct {
		format string
		args   []any
	}{
		{"plain", nil},
		{"%s: %d listener(s), %q", []any{"p", 3, "a \"b\"\n"}},
		{"key %d, id %d, %d %d", []any{int32(-5), uint32(7), int64(-9), uint64(1 << 40)}},
		{"/SYSV%08x", []any{uint32(0x1abc)}},
		{"/SYSV%08x", []any{uint32(0xdeadbeef)}},
		{"%c must be", []any{'g'}},
		{"%c!", []any{byte('x')}},
		{"after %v: %v", []any{1500 * time.Millisecond, errno}},
		{"100%% %s", []any{"done"}},
		{"%s and %s", []any{"one"}},
		{"%v", []any{nil}},
	} {
		want := fmt.Sprintf(c.format, c.args...)
		if c.format == "%s and %s" {
			want = "one and %!s(MISSING)"
		}
		if got := sprintf(c.format, c.args...); got != want {
			t.Errorf("sprintf(%q) = %q, want %q", c.format, got, want)
		}
	}
	err := errorf("%s: %d: %w; nothing sent", "p", 2, errno)
	if err.Error() != "p: 2: no such file or directory; nothing sent" || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("errorf wrapped %v, Is ENOENT %v", err, errors.Is(err, syscall.ENOENT))
	}
	if e, ok := as[syscall.Errno](errorf("outer: %w", errorf("inner: %w", errno))); !ok || e != errno {
		t.Errorf("as through two wraps = %v, %v", e, ok)
	}
	if _, ok := as[*usageError](errorf("x: %v", &usageError{msg: "u"})); ok {
		t.Errorf("%%v must not wrap")
	}
}

// TestFileHelpers covers what replaced os.ReadFile, os.MkdirAll and
// filepath.EvalSymlinks.
func TestFileHelpers(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789"), 1000) // past readFile's first 4 KB
	if err := os.WriteFile(dir+"/f", big, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := readFile(dir + "/f"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("readFile: %d bytes, %v", len(got), err)
	}
	if _, err := readFile(dir + "/none"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("readFile of nothing: %v", err)
	}
	if err := mkdirAll(dir+"/a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mkdirAll(dir+"/a/b/c", 0o755); err != nil {
		t.Fatalf("again: %v", err)
	}
	if st, err := os.Stat(dir + "/a/b/c"); err != nil || !st.IsDir() {
		t.Fatalf("mkdirAll made %v, %v", st, err)
	}
	if err := mkdirAll(dir+"/f/x", 0o755); err != syscall.ENOTDIR {
		t.Fatalf("mkdirAll under a file: %v", err)
	}
	os.Symlink("f", dir+"/l1")         // relative
	os.Symlink(dir+"/l1", dir+"/a/l2") // absolute, to a link
	os.Symlink("loop", dir+"/loop")    // never ends
	if got := followLinks(dir + "/a/l2"); got != dir+"/f" {
		t.Errorf("followLinks = %q, want %q", got, dir+"/f")
	}
	if got := followLinks(dir + "/f"); got != dir+"/f" {
		t.Errorf("followLinks of a file = %q", got)
	}
	if got := followLinks(dir + "/loop"); got != dir+"/loop" {
		t.Errorf("followLinks of a loop = %q", got)
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

// Fuzz targets for every parser of outside input: the bus file, chmod's
// permissions, chown's owners, the command line (-t's durations above all)
// and messages. Each checks properties, not only the absence of a panic.
// Seeds are in testdata/fuzz/<FuzzName>/; `go test` runs them as tests, and
// `go test -run XXX -fuzz FuzzName -fuzztime 20s` searches further.

// keyLine is the bus file's grammar, written independently of parseKey:
// an optional + (atoll takes one), 1 to 19 digits.
var keyLine = regexp.MustCompile(`^\+?([0-9]{1,19})$`)

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
		m := keyLine.FindStringSubmatch(l)
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

var keysErrors = regexp.MustCompile(`^(empty|only one line|more than two lines|line [12] (is not ended by a newline|is empty|is not a decimal key|is out of range \(keys are 1 to 1073741823\)))$`)

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
			if !keysErrors.MatchString(err.Error()) {
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

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"600", "640", "0", "0755", "7777", "77777", "u", "g", "ug", "=ug", "+o", "-g",
		"u-g+o", "u=g", "a", "a-o", "", "rw", "u+r", "8", "=", "u=", "+", "-", "==u", "ugoa=+-"} {
		f.Add(s, uint32(0o640))
	}
	f.Fuzz(func(t *testing.T, s string, cur uint32) {
		cur &= 0o777 // the objects' mode, as ipcBuf.mode reads it
		mode, err := parseMode(s)
		if err != nil {
			if mode != nil {
				t.Fatalf("parseMode(%q): an error and a function", s)
			}
			if m := err.Error(); m != "empty permissions" && !strings.HasPrefix(m, "permissions "+strconv.Quote(s)+": ") {
				t.Fatalf("parseMode(%q): unexpected wording %q", s, m)
			}
			return
		}
		octal := strings.Trim(s, "01234567") == ""
		if !octal && strings.Trim(s, "ugoa=+-") != "" {
			t.Fatalf("parseMode(%q) accepted a character that is neither octal nor ugoa=+-", s)
		}
		for _, c := range []uint32{cur, 0, 0o777, 0o600, 0o070} {
			m := mode(c)
			if m&^0o777 != 0 {
				t.Fatalf("parseMode(%q) on %o = %o: not within 0777", s, c, m)
			}
			if octal {
				v, _ := strconv.ParseUint(s, 8, 32)
				if m != uint32(v)&0o777 {
					t.Fatalf("parseMode(%q) = %o, want %o", s, m, v&0o777)
				}
				continue
			}
			// Letters move whole classes: each class is all on, all off,
			// or as it was.
			for _, class := range []uint32{0o700, 0o070, 0o007} {
				if got := m & class; got != 0 && got != class && got != c&class {
					t.Fatalf("parseMode(%q) on %o = %o: class %o only partly set", s, c, m, class)
				}
			}
			// A class named only after + is on, only after - is off.
			if !strings.ContainsAny(s, "=a") && !strings.ContainsAny(s[:1], "ugo") {
				for i, class := range []uint32{0o700, 0o070, 0o007} {
					letter := "ugo"[i]
					last := strings.LastIndexByte(s, letter)
					if last < 0 {
						if m&class != c&class {
							t.Fatalf("parseMode(%q) on %o = %o: changed class %o it does not name", s, c, m, class)
						}
						continue
					}
					op := s[strings.LastIndexAny(s[:last], "+-")]
					if want := map[byte]uint32{'+': class, '-': 0}[op]; m&class != want {
						t.Fatalf("parseMode(%q) on %o = %o: class %o after %c", s, c, m, class, op)
					}
				}
			}
		}
		// A string with no + or - sets the mode outright: the current one
		// does not matter.
		if !octal && !strings.ContainsAny(s, "+-") && mode(0) != mode(0o777) {
			t.Fatalf("parseMode(%q) gives %o on 0 but %o on 777", s, mode(0), mode(0o777))
		}
	})
}

// passwdIDs reads name -> id from a passwd-like file, first entry winning,
// written independently of lookupDB.
func passwdIDs(file string) map[string]string {
	ids := map[string]string{}
	data, err := os.ReadFile(file)
	if err != nil {
		return ids
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if _, seen := ids[f[0]]; !seen {
			ids[f[0]] = f[2]
		}
	}
	return ids
}

func FuzzParseOwner(f *testing.F) {
	for _, s := range []string{"root", "root:root", "0", "0:0", "65534:65534", "nobody:nogroup", ":", ":root", "root:",
		"", "no-such-user-x", "root:no-such-group-x", "4294967295", "4294967296", "0:4294967295", "-1", "+1", "a:b:c", "root\n"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	users, groups := passwdIDs("/etc/passwd"), passwdIDs("/etc/group")
	resolve := func(name string, ids map[string]string) (int, bool) {
		// Numbers first; 4294967295 is no one, and on 32-bit arches ids
		// from 2^31 cannot be held.
		whole := func(n uint64) bool { return n != 1<<32-1 && n <= uint64(^uint(0)>>1) }
		if n, err := strconv.ParseUint(name, 10, 32); err == nil {
			return int(n), whole(n)
		}
		id, ok := ids[name]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseUint(id, 10, 32)
		return int(n), err == nil && whole(n)
	}
	f.Fuzz(func(t *testing.T, s string, groupOnly bool) {
		uid, gid, err := parseOwner(s, groupOnly)
		user, group, hasGroup := strings.Cut(s, ":")
		if groupOnly {
			user, group, hasGroup = "", s, true
		}
		var usage *usageError
		wantUID, wantGID := -1, -1
		if !groupOnly {
			if user == "" {
				if !errors.As(err, &usage) || usage.msg != "owner "+strconv.Quote(s)+": no user name" {
					t.Fatalf("parseOwner(%q): %v, want a usage error: no user name", s, err)
				}
				return
			}
			id, ok := resolve(user, users)
			if !ok {
				if err == nil || err.Error() != "no such user "+strconv.Quote(user)+" (not in /etc/passwd)" {
					t.Fatalf("parseOwner(%q): %v, want no such user", s, err)
				}
				return
			}
			wantUID = id
		}
		if hasGroup {
			if group == "" {
				if !errors.As(err, &usage) || usage.msg != "group "+strconv.Quote(s)+": no group name" {
					t.Fatalf("parseOwner(%q, %v): %v, want a usage error: no group name", s, groupOnly, err)
				}
				return
			}
			id, ok := resolve(group, groups)
			if !ok {
				if err == nil || err.Error() != "no such group "+strconv.Quote(group)+" (not in /etc/group)" {
					t.Fatalf("parseOwner(%q, %v): %v, want no such group", s, groupOnly, err)
				}
				return
			}
			wantGID = id
		}
		// Ids come back whole: never negative but for "not given" (-1),
		// on 32-bit arches too.
		if err == nil && (uid < -1 || gid < -1 || (!groupOnly && uid < 0) || (hasGroup && gid < 0)) {
			t.Fatalf("parseOwner(%q, %v) = %d, %d: an id overflowed", s, groupOnly, uid, gid)
		}
		if err != nil || uid != wantUID || gid != wantGID {
			t.Fatalf("parseOwner(%q, %v) = %d, %d, %v; want %d, %d", s, groupOnly, uid, gid, err, wantUID, wantGID)
		}
		// (uid_t)-1 is not an id: chown(2) reads it as "leave it", IPC_SET
		// refuses it.
		if int64(uid) == 1<<32-1 || int64(gid) == 1<<32-1 {
			t.Fatalf("parseOwner(%q, %v) = %d, %d: 4294967295 means no change to chown(2), it names nobody", s, groupOnly, uid, gid)
		}
	})
}

// FuzzParseDuration: -t takes exactly the positive Go durations, before or
// after the subcommand, and says which flag and value are wrong otherwise.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"500ms", "2s", "1m", "1h30m", "1.5s", "0", "0s", "-1s", "1", "soon", "", "1e3s",
		"9999999999h", "2562047h47m16.854775807s", "2562047h47m16.854775808s", "a: b", "-h", "--", "5µs", ".5s", "+3s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, perr := time.ParseDuration(s)
		good := perr == nil && d > 0
		for _, argv := range [][]string{
			{"wait", "-t", s, "PATH"},
			{"broadcast", "-t=" + s, "PATH", "msg"},
			{"-t", s, "listen", "PATH"},
		} {
			o, err := parseArgs(argv, io.Discard)
			if good {
				if err != nil || o.timeout != d || o.args[0] != "PATH" {
					t.Fatalf("parseArgs(%q): %v, timeout %v; want %v", argv, err, o, d)
				}
				continue
			}
			var usage *usageError
			if !errors.As(err, &usage) {
				t.Fatalf("parseArgs(%q) = %v, %v; want a usage error", argv, o, err)
			}
			why := "not a duration (try 500ms, 2s, 1m)"
			if perr == nil {
				why = "the duration must be more than 0"
			}
			if want := "-t " + strconv.Quote(s) + ": " + why; usage.msg != want {
				t.Fatalf("parseArgs(%q): %q, want %q", argv, usage.msg, want)
			}
		}
	})
}

// FuzzParseArgs: any command line (NUL-separated words) gives options that
// fit the subcommand, a one-line usage error, or help.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"create", "create\x00-x\x00/run/bus/x", "-x\x00create\x00p", "remove\x00p", "broadcast\x00-n\x00-t\x001s\x00p\x00m",
		"-n\x00broadcast\x00p\x00m", "broadcast\x00--\x00p\x00-m", "listen\x00-m\x00^a$\x00-r\x002\x00-0\x00p\x00echo",
		"wait\x00-t\x00soon\x00p", "wait\x00-m\x00(\x00p", "wait\x00-r\x0099\x00p", "chmod\x00rwx\x00p", "chown\x00:\x00p",
		"help", "help\x00wait", "-h", "--help", "wait\x00-h", "", "frobnicate", "-t", "-t\x001s", "--\x00listen\x00p",
		"listen\x00-m=a\x00p", "listen\x00--r=2\x00p", "info\x00-q\x00p", "-q", "-\x00listen",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		argv := strings.Split(s, "\x00")
		var out bytes.Buffer
		o, err := parseArgs(argv, &out)
		var usage *usageError
		switch {
		case err == nil:
			sc, ok := subcommands[o.name]
			if !ok {
				t.Fatalf("parseArgs(%q): unknown subcommand %q accepted", argv, o.name)
			}
			if n := len(o.args); n < sc.minArgs || n > sc.maxArgs {
				t.Fatalf("parseArgs(%q): %d operands for %s", argv, n, o.name)
			}
			if o.timeout < 0 || o.readyFD < -1 {
				t.Fatalf("parseArgs(%q): timeout %v, fd %d", argv, o.timeout, o.readyFD)
			}
			for flag, set := range map[byte]bool{'x': o.excl, 'n': o.nowait, '0': o.nul, 't': o.timeout != 0, 'm': o.match != nil, 'r': o.readyFD >= 0} {
				if set && !strings.ContainsRune(sc.flags, rune(flag)) {
					t.Fatalf("parseArgs(%q): -%c set for %s, which does not take it", argv, flag, o.name)
				}
			}
			if out.Len() != 0 {
				t.Fatalf("parseArgs(%q) printed %q", argv, out.String())
			}
		case errors.Is(err, errHelp):
			if !strings.HasPrefix(out.String(), "usage: bus ") && !strings.HasPrefix(out.String(), "bus: broadcast short messages") {
				t.Fatalf("parseArgs(%q): help printed %q", argv, out.String())
			}
		case errors.As(err, &usage):
			if usage.msg == "" || (!strings.Contains(s, "\n") && strings.Contains(usage.msg, "\n")) {
				t.Fatalf("parseArgs(%q): usage error %q is not one line", argv, usage.msg)
			}
			if _, ok := subcommands[usage.name]; usage.name != "" && !ok {
				t.Fatalf("parseArgs(%q): usage of unknown subcommand %q", argv, usage.name)
			}
			if out.Len() != 0 {
				t.Fatalf("parseArgs(%q) printed %q with an error", argv, out.String())
			}
		default:
			t.Fatalf("parseArgs(%q): %v is neither a usage error nor help", argv, err)
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
