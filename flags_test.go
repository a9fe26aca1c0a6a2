package main

// The command line's parsers (flags.go), in process: arguments and flags,
// help, permissions for chmod, owners for chown, durations; with their fuzz
// targets.

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	// -r takes a descriptor open for writing: one of this process's.
	_, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fd := strconv.Itoa(int(w.Fd()))
	for _, c := range []struct {
		args  []string
		want  options
		match string // -m's REGEXP, if any
		err   string
	}{
		{[]string{"create"}, options{name: "create"}, "", ""},
		{[]string{"create", "-x", "p"}, options{name: "create", excl: true, args: []string{"p"}}, "", ""},
		{[]string{"-x", "create", "p"}, options{name: "create", excl: true, args: []string{"p"}}, "", ""},
		{[]string{"-n", "broadcast", "p", "m"}, options{name: "broadcast", nowait: true, args: []string{"p", "m"}}, "", ""},
		{[]string{"broadcast", "-n", "p", "m"}, options{name: "broadcast", nowait: true, args: []string{"p", "m"}}, "", ""},
		{[]string{"broadcast", "--", "p", "-m"}, options{name: "broadcast", args: []string{"p", "-m"}}, "", ""},
		{[]string{"-n", "--", "broadcast", "p", "m"}, options{name: "broadcast", nowait: true, args: []string{"p", "m"}}, "", ""},
		{[]string{"-t", "2s", "wait", "p"}, options{name: "wait", timeout: 2 * time.Second, args: []string{"p"}}, "", ""},
		{[]string{"wait", "-t=1m", "-0", "p", "cmd"}, options{name: "wait", timeout: time.Minute, nul: true, args: []string{"p", "cmd"}}, "", ""},
		{[]string{"listen", "-r", fd, "p"}, options{name: "listen", readyFD: int(w.Fd()), args: []string{"p"}}, "", ""},
		{[]string{"wait", "-x", "p"}, options{}, "", "flag not known: -x"},
		{[]string{"remove"}, options{}, "", "missing operand"},
		{[]string{"remove", "a", "b"}, options{}, "", `extra operand "b"`},
		{[]string{"chmod", "u"}, options{}, "", "missing operand"},
		{[]string{"wait", "-t", "0", "p"}, options{}, "", "-t \"0\": the duration must be more than 0"},
		{[]string{"wait", "-t", "1x", "p"}, options{}, "", "not a duration"},
		// What the flag package accepted, parseFlags accepts.
		{[]string{"create", "--x", "p"}, options{name: "create", excl: true, args: []string{"p"}}, "", ""},
		{[]string{"create", "-x=true", "-x=false", "p"}, options{name: "create", args: []string{"p"}}, "", ""},
		// -v: the messages -m does not match; alone it would select none.
		{[]string{"listen", "-v", "-m", "^1 ", "p"}, options{name: "listen", invert: true, args: []string{"p"}}, "^1 ", ""},
		{[]string{"-v", "wait", "-m", "x", "p"}, options{name: "wait", invert: true, args: []string{"p"}}, "x", ""},
		{[]string{"wait", "-vm", "x", "p"}, options{name: "wait", invert: true, args: []string{"p"}}, "x", ""},
		{[]string{"wait", "-v=false", "p"}, options{name: "wait", args: []string{"p"}}, "", ""},
		{[]string{"listen", "-v", "p"}, options{}, "", "-v needs -m"},
		{[]string{"broadcast", "-v", "p", "m"}, options{}, "", "flag not known: -v"},
		{[]string{"wait", "--t", "3s", "-0=1", "p"}, options{name: "wait", timeout: 3 * time.Second, nul: true, args: []string{"p"}}, "", ""},
		{[]string{"wait", "-m=^a=b$", "p"}, options{name: "wait", args: []string{"p"}}, "^a=b$", ""},
		{[]string{"listen", "--r=" + fd, "p"}, options{name: "listen", readyFD: int(w.Fd()), args: []string{"p"}}, "", ""},
		{[]string{"broadcast", "-", "m"}, options{name: "broadcast", args: []string{"-", "m"}}, "", ""},
		{[]string{"create", "-x=maybe", "p"}, options{}, "", `-x "maybe": not true or false`},
		{[]string{"create", "---x", "p"}, options{}, "", "bad flag syntax: ---x"},
		{[]string{"create", "-=x", "p"}, options{}, "", "bad flag syntax: -=x"},
		{[]string{"create", "--=x", "p"}, options{}, "", "bad flag syntax: --=x"},
		{[]string{"wait", "-t"}, options{}, "", "flag needs an argument: -t"},
		{[]string{"-t"}, options{}, "", "no subcommand"},
		{[]string{"-n0t"}, options{}, "", "no subcommand"},
		{[]string{"wait", "-m", "(", "p"}, options{}, "", `-m "(": missing closing ): ` + "`(`"},
		{[]string{"listen", "-r", "x", "p"}, options{}, "", `-r "x": not a file descriptor number`},
		{[]string{"broadcast", "--bogus", "p", "m"}, options{}, "", "flag not known: -bogus"},
		{[]string{"broadcast", "--n0", "p", "m"}, options{}, "", "flag not known: -n0"},

		// POSIX utility syntax, as the C tool's arg.h reads it: grouped
		// flags, a value attached or next, the rest of a group as a value.
		{[]string{"broadcast", "-n0", "p", "-"}, options{name: "broadcast", nowait: true, nul: true, args: []string{"p", "-"}}, "", ""},
		{[]string{"-n0", "broadcast", "p", "-"}, options{name: "broadcast", nowait: true, nul: true, args: []string{"p", "-"}}, "", ""},
		{[]string{"broadcast", "-0nt1s", "p", "-"}, options{name: "broadcast", nowait: true, nul: true, timeout: time.Second, args: []string{"p", "-"}}, "", ""},
		{[]string{"broadcast", "-n0t", "2s", "p", "-"}, options{name: "broadcast", nowait: true, nul: true, timeout: 2 * time.Second, args: []string{"p", "-"}}, "", ""},
		{[]string{"-0t", "2s", "wait", "p"}, options{name: "wait", nul: true, timeout: 2 * time.Second, args: []string{"p"}}, "", ""},
		{[]string{"-t1s", "wait", "p"}, options{name: "wait", timeout: time.Second, args: []string{"p"}}, "", ""},
		{[]string{"wait", "-t1s", "p"}, options{name: "wait", timeout: time.Second, args: []string{"p"}}, "", ""},
		{[]string{"listen", "-m^x", "p"}, options{name: "listen", args: []string{"p"}}, "^x", ""},
		{[]string{"listen", "-m", "-x", "p"}, options{name: "listen", args: []string{"p"}}, "-x", ""},
		{[]string{"listen", "-0m^x -t", "p"}, options{name: "listen", nul: true, args: []string{"p"}}, "^x -t", ""},
		{[]string{"listen", "-r" + fd, "p"}, options{name: "listen", readyFD: int(w.Fd()), args: []string{"p"}}, "", ""},
		{[]string{"listen", "-0r" + fd, "-t5", "p"}, options{name: "listen", nul: true, timeout: 5 * time.Second, readyFD: int(w.Fd()), args: []string{"p"}}, "", ""},
		{[]string{"wait", "-tn", "p"}, options{}, "", `-t "n": not a duration`}, // -t takes the rest of its group
		{[]string{"wait", "-tx", "p"}, options{}, "", `-t "x": not a duration`},
		{[]string{"wait", "-t="}, options{}, "", `-t "": not a duration`},
		{[]string{"wait", "-0t"}, options{}, "", "flag needs an argument: -t"},
		{[]string{"broadcast", "-nq", "p", "m"}, options{}, "", "flag not known: -q (in -nq)"},
		{[]string{"wait", "-xy", "p"}, options{}, "", "flag not known: -x (in -xy)"},
		{[]string{"wait", "-0\xc3\xa9", "p"}, options{}, "", "flag not known: -\u00e9 (in -0\u00e9)"},

		// DURATION: seconds, as timeout(1) takes them; out of range.
		{[]string{"wait", "-t", "5", "p"}, options{name: "wait", timeout: 5 * time.Second, args: []string{"p"}}, "", ""},
		{[]string{"wait", "-t", "1.5", "p"}, options{name: "wait", timeout: 1500 * time.Millisecond, args: []string{"p"}}, "", ""},
		{[]string{"wait", "-t.25", "p"}, options{name: "wait", timeout: 250 * time.Millisecond, args: []string{"p"}}, "", ""},
		{[]string{"wait", "-t", "1h30m", "p"}, options{name: "wait", timeout: 90 * time.Minute, args: []string{"p"}}, "", ""},
		{[]string{"wait", "-t", "0.0", "p"}, options{}, "", "the duration must be more than 0"},
		{[]string{"wait", "-t", "1.2.3", "p"}, options{}, "", "not a duration"},
		{[]string{"wait", "-t", ".", "p"}, options{}, "", "not a duration"},
		{[]string{"wait", "-t", "-1", "p"}, options{}, "", "not a duration"},
		{[]string{"wait", "-t", "99999999999h", "p"}, options{}, "", `-t "99999999999h": out of range (at most 2562047h47m16.854775807s)`},
		{[]string{"wait", "-t", "99999999999", "p"}, options{}, "", "out of range"},
		{[]string{"wait", "-t", "2562047h47m16.854775808s", "p"}, options{}, "", "out of range"},

		// After PATH, operands only; -- ends the flags wherever it is.
		{[]string{"broadcast", "p", "-n"}, options{}, "", `flag -n after PATH: flags go before PATH (-- before "-n" makes it an operand)`},
		{[]string{"listen", "p", "-t", "1s"}, options{}, "", "flag -t after PATH: flags go before PATH"},
		{[]string{"wait", "p", "-t"}, options{}, "", "flag -t after PATH"},
		{[]string{"wait", "p", "cmd", "-0"}, options{}, "", "flag -0 after PATH"},
		{[]string{"create", "p", "--x"}, options{}, "", "flag -x after PATH"},
		{[]string{"listen", "p", "cmd -t x"}, options{name: "listen", args: []string{"p", "cmd -t x"}}, "", ""},
		{[]string{"listen", "p", "-q"}, options{name: "listen", args: []string{"p", "-q"}}, "", ""},
		{[]string{"broadcast", "p", "-3 dash"}, options{name: "broadcast", args: []string{"p", "-3 dash"}}, "", ""},
		{[]string{"broadcast", "p", "--", "-n"}, options{name: "broadcast", args: []string{"p", "-n"}}, "", ""},
		{[]string{"listen", "p", "--", "--help"}, options{name: "listen", args: []string{"p", "--help"}}, "", ""},
		{[]string{"broadcast", "--", "p", "--"}, options{name: "broadcast", args: []string{"p", "--"}}, "", ""},
		{[]string{"listen", "p", "--"}, options{name: "listen", args: []string{"p"}}, "", ""},

		// MESSAGE is required: stdin is read only with -.
		{[]string{"broadcast", "p"}, options{}, "", "missing MESSAGE (- sends the lines of stdin)"},
		{[]string{"broadcast", "-n", "p"}, options{}, "", "missing MESSAGE"},

		// -r: not a descriptor that bus needs itself.
		{[]string{"wait", "-r", "1", "p"}, options{}, "", `-r "1": standard output carries the messages or the command's output (to signal on it: -r 3 3>&1)`},
		{[]string{"listen", "-r1", "p", "cmd"}, options{}, "", `-r "1": standard output`},
		{[]string{"listen", "-r", "2", "p", "cmd"}, options{}, "", `-r "2": standard error carries bus's errors and timeouts (to signal on it: -r 3 3>&2)`},

		// chmod: a dash starts permissions, as the C tool takes them.
		{[]string{"chmod", "-o", "p"}, options{name: "chmod", args: []string{"-o", "p"}}, "", ""},
		{[]string{"chmod", "-g+o", "p"}, options{name: "chmod", args: []string{"-g+o", "p"}}, "", ""},
		{[]string{"chmod", "--", "-o", "p"}, options{name: "chmod", args: []string{"-o", "p"}}, "", ""},
		{[]string{"chmod", "u", "-o"}, options{name: "chmod", args: []string{"u", "-o"}}, "", ""},
		{[]string{"chmod", "-w", "p"}, options{}, "", "flag not known: -w"},

		// The version.
		{[]string{"--version"}, options{name: "version"}, "", ""},
		{[]string{"version"}, options{name: "version"}, "", ""},
		{[]string{"--version", "x"}, options{}, "", `extra operand "x"`},
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
		match := ""
		if o.match != nil {
			match = o.match.String()
		}
		if o.name != c.want.name || o.excl != c.want.excl || o.nowait != c.want.nowait || o.nul != c.want.nul ||
			o.timeout != c.want.timeout || o.invert != c.want.invert || o.readyFD != c.want.readyFD || match != c.match || !slices.Equal(o.args, c.want.args) {
			t.Errorf("parseArgs(%q) = %+v (-m %q), want %+v (-m %q)", c.args, *o, match, c.want, c.match)
		}
	}
}

func TestParseArgsHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the help's start
	}{
		{[]string{"-h"}, "bus: "},
		{[]string{"--help"}, "bus: "},
		{[]string{"-n", "-help"}, "bus: "},
		{[]string{"wait", "-h"}, "usage: bus wait"},
		{[]string{"wait", "-help", "p"}, "usage: bus wait"},
		{[]string{"wait", "--h"}, "usage: bus wait"},
		{[]string{"-h", "wait"}, "usage: bus wait"},
		{[]string{"wait", "-0h"}, "usage: bus wait"},
		// After PATH too, rather than taken as COMMAND or MESSAGE.
		{[]string{"wait", "p", "-h"}, "usage: bus wait"},
		{[]string{"listen", "p", "--help"}, "usage: bus listen"},
		{[]string{"listen", "p", "cmd", "-help"}, "usage: bus listen"},
		{[]string{"broadcast", "p", "m", "--h"}, "usage: bus broadcast"},
		{[]string{"chmod", "u", "p", "-h"}, "usage: bus chmod"},
		{[]string{"chmod", "-h"}, "usage: bus chmod"},
		{[]string{"version", "-h"}, "usage: bus version"},
	} {
		var out bytes.Buffer
		if _, err := parseArgs(c.args, &out); err != errHelp || !strings.HasPrefix(out.String(), c.want) {
			t.Errorf("parseArgs(%q) = %v, printing %.30q; want help starting %q", c.args, err, out.String(), c.want)
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

// goDuration matches what time.ParseDuration reads, overflow aside: each
// number with its unit, and its value in nanoseconds.
var goDuration = lazyRE(`^([-+]?)((?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\x{b5}s|\x{3bc}s|ms|s|m|h))+)$`)
var durationPart = lazyRE(`([0-9.]+)([^0-9.]+)`)

// durationValue is s's value in nanoseconds, exactly, if it is a duration
// to ParseDuration's grammar (or "0").
func durationValue(s string) (*big.Rat, bool) {
	m := goDuration().FindStringSubmatch(s)
	if m == nil {
		return new(big.Rat), strings.TrimLeft(s, "+-") == "0" && len(s) <= 2
	}
	unit := map[string]int64{"ns": 1, "us": 1e3, "\u00b5s": 1e3, "\u03bcs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
	sum := new(big.Rat)
	for _, p := range durationPart().FindAllStringSubmatch(m[2], -1) {
		n, ok := new(big.Rat).SetString(strings.TrimSuffix(p[1], "."))
		if !ok {
			n, _ = new(big.Rat).SetString("0" + p[1])
		}
		sum.Add(sum, n.Mul(n, new(big.Rat).SetInt64(unit[p[2]])))
	}
	if m[1] == "-" {
		sum.Neg(sum)
	}
	return sum, true
}

// FuzzParseDuration: -t takes the positive Go durations and seconds with
// an optional fraction (as timeout(1)), before or after the subcommand,
// attached or not, and says which flag and value are wrong otherwise:
// out of range (for a well-formed one too long), or not a duration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"500ms", "2s", "1m", "1h30m", "1.5s", "0", "0s", "-1s", "1", "soon", "", "1e3s",
		"9999999999h", "2562047h47m16.854775807s", "2562047h47m16.854775808s", "a: b", "-h", "--", "5µs", ".5s", "+3s",
		"5", "1.5", ".5", "5.", ".", "1.2.3", "-1", "+0", "9223372036", "9223372037", "99999999999", "0.0000000001", "1.s"} {
		f.Add(s)
	}
	maxDuration := new(big.Rat).SetInt64(math.MaxInt64)
	f.Fuzz(func(t *testing.T, s string) {
		text := s
		if s != "" && strings.Trim(s, "0123456789.") == "" && strings.Count(s, ".") <= 1 && s != "." {
			text = s + "s" // seconds
		}
		exact, wellFormed := durationValue(text)
		d, perr := time.ParseDuration(text)
		switch {
		case !wellFormed && perr == nil:
			t.Fatalf("%q: ParseDuration gives %v, yet it is no duration", text, d)
		case wellFormed && perr != nil:
			// Refused only out of range (within a millisecond of the
			// limit, ParseDuration's float arithmetic for fractions decides).
			if room := new(big.Rat).Sub(maxDuration, new(big.Rat).Abs(exact)); room.Cmp(big.NewRat(1e6, 1)) > 0 {
				t.Fatalf("%q: ParseDuration: %v, yet it is %s ns", text, perr, exact.FloatString(0))
			}
		}
		why := ""
		switch {
		case perr == nil && d <= 0:
			why = "the duration must be more than 0"
		case perr != nil && wellFormed:
			why = "out of range (at most 2562047h47m16.854775807s)"
		case perr != nil:
			why = "not a duration (try 1.5, 500ms, 2s, 1m)"
		}
		for _, argv := range [][]string{
			{"wait", "-t", s, "PATH"},
			{"broadcast", "-t=" + s, "PATH", "msg"},
			{"-t", s, "listen", "PATH"},
			{"listen", "-0t" + s, "PATH"},
		} {
			if argv[1] == "-0t"+s && (s == "" || s[0] == '=') {
				continue // -0t takes the next word; -0t=V is -0 -t V
			}
			o, err := parseArgs(argv, io.Discard)
			if why == "" {
				if err != nil || o.timeout != d || o.args[0] != "PATH" {
					t.Fatalf("parseArgs(%q): %v, timeout %v; want %v", argv, err, o, d)
				}
				continue
			}
			var usage *usageError
			if !errors.As(err, &usage) {
				t.Fatalf("parseArgs(%q) = %v, %v; want a usage error", argv, o, err)
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
		"broadcast\x00-n0t1.5\x00p\x00-", "-0t\x005\x00wait\x00p", "listen\x00-m^x\x00-r3\x00p", "wait\x00-tn\x00p",
		"listen\x00p\x00-t\x001s", "listen\x00p\x00--\x00--help", "listen\x00p\x00--help", "broadcast\x00p",
		"chmod\x00-o\x00p", "chmod\x00-w\x00p", "--version", "version", "broadcast\x00-nq\x00p\x00m", "wait\x00-t\x0099999999999\x00p",
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
			for flag, set := range map[byte]bool{'x': o.excl, 'n': o.nowait, '0': o.nul, 'v': o.invert, 't': o.timeout != 0, 'm': o.match != nil, 'r': o.readyFD >= 0} {
				if set && !strings.ContainsRune(sc.flags, rune(flag)) {
					t.Fatalf("parseArgs(%q): -%c set for %s, which does not take it", argv, flag, o.name)
				}
			}
			if out.Len() != 0 {
				t.Fatalf("parseArgs(%q) printed %q", argv, out.String())
			}
			// Without --, no operand after the first is a help word or
			// starts with one of the subcommand's flags.
			if !slices.Contains(argv, "--") {
				for _, a := range o.args[min(1, len(o.args)):] {
					if helpWord(a) || len(a) > 1 && a[0] == '-' && strings.IndexByte(sc.flags, (strings.TrimLeft(a, "-") + "?")[0]) >= 0 {
						t.Fatalf("parseArgs(%q): operand %q after PATH", argv, a)
					}
				}
			}
			// The same options, written out one flag a word, read back the
			// same: grouped, attached and flag-package forms mean what
			// the plain ones do.
			plain := []string{o.name}
			for _, f := range []struct {
				on   bool
				word string
			}{{o.excl, "-x"}, {o.nowait, "-n"}, {o.nul, "-0"}, {o.invert, "-v"}} {
				if f.on {
					plain = append(plain, f.word)
				}
			}
			if o.timeout != 0 {
				plain = append(plain, "-t", o.timeout.String())
			}
			if o.match != nil {
				plain = append(plain, "-m", o.match.String())
			}
			if o.readyFD >= 0 {
				plain = append(plain, "-r", strconv.Itoa(o.readyFD))
			}
			plain = append(append(plain, "--"), o.args...)
			p, err := parseArgs(plain, io.Discard)
			if err != nil || p.name != o.name || p.excl != o.excl || p.nowait != o.nowait || p.nul != o.nul || p.timeout != o.timeout ||
				p.readyFD != o.readyFD || (p.match == nil) != (o.match == nil) || !slices.Equal(p.args, o.args) {
				t.Fatalf("parseArgs(%q) = %+v, but parseArgs(%q) = %+v, %v", argv, *o, plain, p, err)
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
